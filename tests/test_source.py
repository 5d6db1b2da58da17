import deeplake
import numpy as np
import pytest

from lakedet.errors import ConfigError, SourceError
from lakedet.source import SourceSpec, open_source

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def versioned(tmp_path):
    """A dataset with two commits (2 rows, then 3), a saved view of row 0 and its commit ids."""
    path = str(tmp_path / "v")
    ds = deeplake.create(path)
    ds.add_column("x", deeplake.types.Array("int32", dimensions=1))
    ds.append({"x": [np.array([1]), np.array([2])]})
    ds.commit("two rows")
    first = ds.version
    ds.append({"x": [np.array([3])]})
    ds.commit("three rows")
    ds.query("SELECT * WHERE ROW_NUMBER() = 0").tag("first_row")
    return path, first


@pytest.mark.parametrize("prefix", ["", "file://"])
def test_opens_local_paths_read_only(versioned, prefix):
    path, _ = versioned
    ds = open_source(SourceSpec(prefix + path))
    assert len(ds) == 3
    with pytest.raises(Exception):
        ds.append({"x": [np.array([4])]})


def test_opens_mem_datasets():
    ds = deeplake.create("mem://lakedet-source-test")
    ds.add_column("x", deeplake.types.Array("int32", dimensions=1))
    ds.append({"x": [np.array([7])]})
    ds.commit()
    opened = open_source(SourceSpec("mem://lakedet-source-test"))  # keep it: columns don't hold it
    assert opened["x"][0].tolist() == [7]


def test_commit_view_and_query_select_rows(versioned):
    path, first = versioned
    assert len(open_source(SourceSpec(path, commit=first))) == 2
    view = open_source(SourceSpec(path, view="first_row"))
    assert [np.asarray(r).tolist() for r in view["x"][:]] == [[1]]
    assert len(open_source(SourceSpec(path, query="SELECT * WHERE ROW_NUMBER() >= 1"))) == 2


def test_empty_strings_mean_not_set(versioned):
    path, _ = versioned
    assert len(open_source(SourceSpec(path, token="", commit="", view="", query=""))) == 3


def test_errors_name_the_problem(versioned, tmp_path):
    path, first = versioned
    with pytest.raises(SourceError, match="deeplake_path=.*nothing-here"):
        open_source(SourceSpec(str(tmp_path / "nothing-here")))
    with pytest.raises(SourceError) as err:
        open_source(SourceSpec(path, commit="0000000099m00000000"))
    assert "0000000099m00000000" in str(err.value) and first in str(err.value) and "three rows" in str(err.value)
    with pytest.raises(SourceError, match=r"saved views: \['first_row'\]"):
        open_source(SourceSpec(path, view="frist_row"))
    with pytest.raises(SourceError, match="deeplake_query"):
        open_source(SourceSpec(path, query="SELECT * WHERE nope > 1"))
    with pytest.raises(ConfigError, match="both set"):
        SourceSpec(path, view="first_row", query="SELECT *")
