"""Shared code for the Lambda + EFS inference workshop notebooks.

The notebooks import from here; nothing here is specific to one notebook. ``localaws`` is the
embedded local AWS, which is an AWS and not part of the lesson: it never imports the other modules.
"""
