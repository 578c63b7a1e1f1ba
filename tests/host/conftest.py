"""Every host test (and every `dmagent` it starts) sees an empty user config folder: a
developer's own key store or defaults file must not change what a test does."""

import os
import tempfile

import pytest


@pytest.fixture(autouse=True, scope="session")
def _own_config_folder():
    with tempfile.TemporaryDirectory(prefix="dmagent-test-config-") as folder:
        old = os.environ.get("XDG_CONFIG_HOME")
        os.environ["XDG_CONFIG_HOME"] = folder
        yield
        if old is None:
            del os.environ["XDG_CONFIG_HOME"]
        else:
            os.environ["XDG_CONFIG_HOME"] = old
