"""Projects, their metadata config and their API tokens."""

from videoimport_projects.config import (
    MetadataField,
    ProjectConfig,
    metadata_errors,
    parse_config,
)
from videoimport_projects.registry import (
    WRITE_SCOPE,
    ProjectExists,
    TokenGrant,
    UnknownProject,
    create_project,
    create_token,
    grant_for,
    hash_token,
    project_config,
    set_config,
)

__all__ = [
    "WRITE_SCOPE",
    "MetadataField",
    "ProjectConfig",
    "ProjectExists",
    "TokenGrant",
    "UnknownProject",
    "create_project",
    "create_token",
    "grant_for",
    "hash_token",
    "metadata_errors",
    "parse_config",
    "project_config",
    "set_config",
]
