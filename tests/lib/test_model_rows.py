"""bosun.lib.model_rows beyond what the newest-version read tests (tests/parameters)."""

from __future__ import annotations

import pytest

from bosun.lib.model_rows import ModelColumns, column_of
from parameters.models import Parameter, ParameterVersion


def test_columns_are_the_models_concrete_columns_in_order():
    columns = ModelColumns(ParameterVersion, "v")
    assert columns.columns[:3] == ["id", "parameter_id", "version"]
    assert columns.width == len(ParameterVersion._meta.concrete_fields)
    assert columns.select_list().startswith('v."id", v."parameter_id", v."version"')
    assert columns.table() == '"parameters_parameterversion" v'


def test_a_field_without_a_column_is_refused():
    assert column_of(ParameterVersion, "parameter") == "parameter_id"
    with pytest.raises(ValueError, match="has no column"):
        column_of(Parameter, "versions")  # the reverse side of the foreign key
