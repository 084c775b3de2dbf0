"""User-facing errors: each says what was wrong, what was expected and what to do."""


class TenkuError(Exception):
    """An error caused by input the user can fix. The CLI prints it without a traceback."""


class TenkuWarning(UserWarning):
    """Something the user should know about a result (the CLI prints it as ``warning: ...``)."""


class ModelFolderError(TenkuError):
    """A model or pipeline folder is missing, incomplete, corrupted or of the wrong kind."""


class MediaError(TenkuError):
    """A media file cannot be read or written."""


class UnsupportedSizeError(TenkuError):
    """A requested width/height/frames/fps is outside what the model can generate."""
