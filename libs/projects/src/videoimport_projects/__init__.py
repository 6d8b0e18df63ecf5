"""Projects, their metadata config, their API tokens and their webhook secrets."""

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
    TokenInfo,
    UnknownProject,
    UnknownToken,
    create_project,
    create_token,
    grant_for,
    hash_token,
    list_tokens,
    project_config,
    revoke_token,
    set_config,
    token_id,
)

__all__ = [
    "WRITE_SCOPE",
    "MetadataField",
    "ProjectConfig",
    "ProjectExists",
    "TokenGrant",
    "TokenInfo",
    "UnknownProject",
    "UnknownToken",
    "create_project",
    "create_token",
    "grant_for",
    "hash_token",
    "list_tokens",
    "metadata_errors",
    "parse_config",
    "project_config",
    "revoke_token",
    "set_config",
    "token_id",
]
