"""The status page (``/status``): what every PoP runs and how each load balancer is served, for
the admin (everything) and for each tenant (its own load balancers only), in a browser.

- :mod:`views`: the pure core: who may see which rows, and the view models built from records.
- :mod:`snapshot`: reads those records from the store.
- :mod:`sign_in`: the cookie and CSRF rules of signing in with an API token.
- :mod:`routes`: the HTTP shell (server-rendered pages, their JSON twins, the refresh script).
"""
