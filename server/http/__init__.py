"""The HTTP edge: JSON API handlers, pages, and who is calling them."""
