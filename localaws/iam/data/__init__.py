"""Data of the IAM room generated at development time (``generate.py``): the Service Authorization Reference."""
