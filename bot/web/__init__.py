"""The staff console (SPEC section 6): server-rendered pages (Jinja2) on Starlette, served by uvicorn.

`app` builds the ASGI application; `security` holds the session, CSRF and header rules every page
goes through; `pages` the handlers (thin: parse, call bot.staff, render); `i18n` the Japanese and
English words; `server` runs it (the `web` command, the demo, the tests). Templates and static files
ship inside the package."""
