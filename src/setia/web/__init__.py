"""The admin console (``/console``) and the member portal (``/portal``): server-rendered pages
(Jinja2 + htmx) served by the same FastAPI app, in Bahasa Indonesia, Malay and English."""
