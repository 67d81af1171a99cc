"""The portal's server-rendered pages: sign-up, login, Settings → Authentication methods."""
