"""The config's one error type (a module of its own: every config module raises it)."""


class ConfigError(ValueError):
  """A config value that is not allowed; the message is one line meant for the user."""
