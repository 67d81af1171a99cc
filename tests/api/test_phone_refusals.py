"""The API tells why a phone number is refused: the problem keeps ``code``
``validation_error`` and ``field`` ``phone``; its ``detail`` says what is wrong with the
number (English by default, Russian for ``Accept-Language: ru``)."""

from __future__ import annotations

import pytest

from tests.api.helpers import auth, problem
from tests.api.oob_support import Stack
from tests.api.test_oob_enrollment import signed_in


@pytest.mark.parametrize(("phone", "en", "ru"), [
    ("+44 7700", "too short", "слишком короткий"),
    ("+44 7400 1234567890", "too long", "слишком длинный"),
    ("+999 1234567", "country code is unknown", "кода страны нет"),
    ("+44 20 7946 0018", "mobile phone number", "мобильного телефона"),
])
async def test_the_problem_says_why_a_phone_is_refused(stack: Stack, phone: str, en: str,
                                                      ru: str) -> None:
    token = await signed_in(stack)
    body = problem(await stack.enroll(token, "sms", phone=phone), 422, "validation_error")
    assert body["field"] == "phone" and en in body["detail"], body
    r = await stack.client.post("/api/v1/me/methods/sms/enrollment",
                                json={"pin": "417293", "phone": phone},
                                headers={**auth(token), "Accept-Language": "ru"})
    body = problem(r, 422, "validation_error")
    assert body["field"] == "phone" and ru in body["detail"], body
    assert stack.sent_count() == 0
