"""The model registry: which models exist, where their files are, which are loaded, and which
one speaks a given language. Depends on the engine, never the other way round."""

from f5serve.registry.catalog import (
    BUILTIN_MODELS,
    DEFAULT_MODEL,
    Catalog,
    HubFile,
    HubFolder,
    LocalPath,
    ModelSpec,
)
from f5serve.registry.language import AUTO, Detection, LanguageRouter
from f5serve.registry.manager import LoadedModel, ModelManager
from f5serve.registry.model_registry import ModelRegistry
from f5serve.registry.models_file import load_catalog, read_models_file
from f5serve.registry.store import ModelFiles, ModelStore

__all__ = [
    "AUTO",
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "Catalog",
    "Detection",
    "HubFile",
    "HubFolder",
    "LanguageRouter",
    "LoadedModel",
    "LocalPath",
    "ModelFiles",
    "ModelManager",
    "ModelRegistry",
    "ModelSpec",
    "ModelStore",
    "load_catalog",
    "read_models_file",
]
