"""Pure support policy: the rules as data, the business-hours clock, entitlement and price.

Nothing here does I/O or imports a framework; every function that depends on time takes `now`.
"""
