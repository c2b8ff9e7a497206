"""An instance's secret configuration values: encrypted at rest, each bound to its row and key."""

from __future__ import annotations

from hubgate.elements.sdk import Element
from hubgate.instances import configuration as cfg
from hubgate.instances.models import Instance
from hubgate.kit.crypto import Keyring


def secret_aad(instance_id: int, key: str) -> str:
    # Binds a ciphertext to its row and field: moved anywhere else it no longer opens.
    return f"instances:{instance_id}:configuration.{key}"


def decrypt_configuration(keyring: Keyring, instance: Instance) -> cfg.Configuration:
    config: cfg.Configuration = dict(instance.configuration)
    for key, ciphertext in instance.secrets.items():
        config[key] = keyring.decrypt(ciphertext, secret_aad(instance.id, key))
    return config


def store_configuration(
    keyring: Keyring, element: Element, instance: Instance, config: cfg.Configuration
) -> None:
    plain, hidden = cfg.split_secrets(element.manifest, config)
    instance.configuration = plain
    instance.secrets = {
        k: keyring.encrypt(v, secret_aad(instance.id, k)) for k, v in hidden.items()
    }
