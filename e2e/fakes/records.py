"""What the fakes share about the calls they record for the tests to inspect."""


def matching(records: list, **fields) -> list:
    """The records whose named attributes equal the given values; a value of None matches any."""
    return [record for record in records
            if all(value is None or getattr(record, name) == value for name, value in fields.items())]
