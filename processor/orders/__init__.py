"""Order use cases behind the API: create, get, list, cancel."""
