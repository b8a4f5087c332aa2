"""No usable secret outside development. (Every state-changing route refusing a missing or
wrong key, enumerated from the OpenAPI schema, is tests/api/test_security.py.)"""

from __future__ import annotations


def test_production_refuses_to_start_without_a_real_key(settings_factory):
    import pytest

    from api.runtime import Runtime

    for key in (None, "", "dev-insecure-key", "short"):
        settings = settings_factory(environment="production", api_key=key)
        with pytest.raises(RuntimeError, match="IA_CONTINU_API_KEY"):
            Runtime.start(settings)


def test_development_has_a_default_key_production_does_not(settings_factory):
    import pytest

    assert settings_factory(environment="development", api_key=None).effective_api_key
    with pytest.raises(RuntimeError):
        _ = settings_factory(environment="production", api_key=None).effective_api_key
