"""The typed config: dataclasses (``schema``) loaded from YAML with overrides and one-line errors (``loading``)."""
from .loading import RETIRED_KEYS, apply_override, config_from_dict, load_config, save_config, validate
from .schema import (
                     PUBLISHED_PARTS,
                     AssignerConfig,
                     AugmentConfig,
                     BackboneConfig,
                     Config,
                     ConfigError,
                     DataConfig,
                     DatasetConfig,
                     EvalConfig,
                     HeadConfig,
                     ModelConfig,
                     NeckConfig,
                     TrainConfig,
)

__all__ = ["Config", "ModelConfig", "BackboneConfig", "NeckConfig", "HeadConfig", "AssignerConfig", "DataConfig",
           "DatasetConfig", "AugmentConfig", "TrainConfig", "EvalConfig", "ConfigError", "PUBLISHED_PARTS",
           "RETIRED_KEYS", "load_config", "save_config", "config_from_dict", "apply_override", "validate"]
