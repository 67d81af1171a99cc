"""The support console (``/admin``): server-rendered pages for support staff."""
