"""The real-time scoring service (`fti serve`): the batch scoring path, on request."""
