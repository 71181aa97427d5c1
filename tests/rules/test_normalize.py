

def test_group_ids_are_equal_exactly_when_rows_are_equal_even_when_renumbered(monkeypatch):
    from batch_payouts.rules import normalize as module

    columns = [["a", "b", "a", "b", "a"], ["1", "1", "1", "2", "1"], ["x", "y", "x", "y", "z"]]
    expected = module._group_ids(columns).tolist()
    monkeypatch.setattr(module, "_ID_LIMIT", 3)  # renumber before every column
    for ids in (expected, module._group_ids(columns).tolist()):
        rows = list(zip(*columns))
        assert all((ids[i] == ids[j]) == (rows[i] == rows[j]) for i in range(5) for j in range(5))
