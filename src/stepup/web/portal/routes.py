"""Portal pages: the router that app.py includes, assembled from one module per area."""

from fastapi import APIRouter

from stepup.web import flat_routes
from stepup.web.portal import (
    activity,
    auth,
    devices,
    email_verification,
    enroll,
    language,
    manage,
    operations,
    passkeys,
    recovery,
    security,
    settings,
)

router = APIRouter(include_in_schema=False)
for _part in (auth.router, settings.router, enroll.router, manage.router, devices.router,
              passkeys.router, operations.router, recovery.router, activity.router,
              language.router, security.router, email_verification.router):
    flat_routes.include(router, _part)  # plain routes: see web/flat_routes.py
# The development outbox page (portal/dev.py) is included by app.py, outside production
# only.
