"""The demo: seeding (``flask demo seed``), the bulk writer for region-scale data, staging
the Max sandbox, the actors who play employees pressing Start, and the ``make run``
supervisor. Nothing in the product imports this package."""
