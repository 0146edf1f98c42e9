"""The embedded local AWS: moto's control plane plus a Lambda engine that runs functions for real.

It is an AWS, not a lesson: nothing here imports the workshop modules (stacks, bench, cost, plots).
``python -m localaws start|stop|status|url|serve`` manages the server; the workshop's
``helpers.session`` starts it on demand.
"""
