"""The root of every error a user can cause and fix: printed as a sentence, with an exit code."""


class UserError(Exception):
    """A failure the user can fix; `exit_code` is what the CLI returns for it."""

    exit_code = 1


class ConfigError(UserError, ValueError):
    """A setting or the policy file is unusable; the service must not start."""

    exit_code = 2
