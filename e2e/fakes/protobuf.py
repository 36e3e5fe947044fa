"""Just enough protobuf wire format for LiveKit's CreateRoomRequest and Room messages."""

VARINT = 0
LENGTH_DELIMITED = 2


def _read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if offset >= len(data):
            raise ValueError("truncated varint")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, offset
        shift += 7


def decode(data: bytes) -> dict[int, list]:
    """Field number → values in wire order (ints for varints, bytes for length-delimited fields).

    Other wire types raise ValueError: none of the messages the service sends uses them, so
    meeting one means the request is not what the contract describes.
    """
    fields: dict[int, list] = {}
    offset = 0
    while offset < len(data):
        key, offset = _read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == VARINT:
            value, offset = _read_varint(data, offset)
        elif wire_type == LENGTH_DELIMITED:
            length, offset = _read_varint(data, offset)
            if offset + length > len(data):
                raise ValueError("truncated field")
            value, offset = data[offset:offset + length], offset + length
        else:
            raise ValueError(f"unexpected wire type {wire_type} for field {number}")
        fields.setdefault(number, []).append(value)
    return fields


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | VARINT) + _varint(value)


def string_field(number: int, value: str) -> bytes:
    encoded = value.encode()
    return _varint(number << 3 | LENGTH_DELIMITED) + _varint(len(encoded)) + encoded
