"""The HTTP contract: request/response models, the OpenAPI document, JSON views, cursors."""
