"""The one exception tree of fti. Messages say what was wrong and what to do next."""


class FtiError(Exception):
    """Root of every error fti raises on purpose.

    ``retry_helps`` says whether running the same step again could succeed (a lock held, a
    database busy). False for errors about the input or the definition: a retry of the same
    input fails the same way, so the DAGs fail such a task at once instead of retrying it.
    """

    retry_helps = True


class ConfigError(FtiError):
    """Settings, params.yaml or the project definition are wrong."""

    retry_helps = False


class DefinitionError(ConfigError):
    """The project definition breaks a rule (a name, a reference, a metric for its task)."""


class OwnershipError(DefinitionError):
    """A project writes a name (source, group, model) that another project owns."""


class LeakageError(FtiError):
    """A group's build used rows after the date it computed (it peeked ahead)."""

    retry_helps = False


class InputFileError(FtiError):
    """A raw input file cannot be used at all (unreadable, missing columns, empty)."""

    retry_helps = False


class QuarantineThresholdError(FtiError):
    """Too large a share of a file's rows broke a validation rule."""

    retry_helps = False


class StoreError(FtiError):
    """The feature store cannot publish or read a version."""


class VersionNotFoundError(StoreError):
    """A named feature-group version or date partition does not exist."""


class RegistryError(FtiError):
    """The model registry refused an operation (unknown model, version or alias)."""


class ArtifactIntegrityError(RegistryError):
    """A model artifact does not match its recorded sha256 or is not a safe format."""


class SkewError(FtiError):
    """Features at scoring time differ from the ones the model was trained on."""

    retry_helps = False


class ReadOnlyQueryError(FtiError):
    """`fti sql` was given a statement that writes."""


class PredictionWriteError(FtiError):
    """Writing a prediction slice failed; the transaction rolled back, the old slice stands."""
