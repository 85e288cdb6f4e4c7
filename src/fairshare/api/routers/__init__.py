"""The API's routers, one per area; every route declares its permission (``deps.Require``)."""
