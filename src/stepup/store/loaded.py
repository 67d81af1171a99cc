"""Mapped objects made from a Core statement's row, as if the ORM had loaded them.

An ORM query runs the ORM's compile state, loading context and row processing around
its SELECT; the same SELECT as a Core statement on the driver's cursor (store/driver.py)
skips them. A verification needs mapped objects all the same: it changes them, and its
session writes the changes when it commits. ``persistent`` makes them from the Core row
as the ORM's loading makes them (``loading._instance``): the values put in the instance's
dict, its identity taken from the primary key, the instance put in the session's
identity map, so it is persistent as a loaded one is (changes tracked and flushed,
expunged and rolled back alike). An identity the session holds already is answered with
the instance it holds, unchanged, as a query would answer it. For the user and method of
a verification this took 2.25 M instructions per verification down to 2.05 M
(bench/instructions.py); putting them in the identity map as the loading does, rather
than through ``make_transient_to_detached`` and ``Session.add``, took it further
(bench/README.md, after round 22).

A statement read this way selects a table's columns in the table's order
(``select(table)``, or a join of two whole tables: ``pair``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, configure_mappers
from sqlalchemy.orm.attributes import instance_state

T = TypeVar("T")
U = TypeVar("U")


class _Shape:
    """A mapped class's attribute names in its table's column order, and where its
    primary key sits in a row."""

    __slots__ = ("keys", "mapper", "primary")

    def __init__(self, model: type[Any]) -> None:
        # An instance made without calling its class does not configure the mappers as
        # the class's constructor does, and the attributes of an unconfigured class
        # cannot be read: the first call of a fresh worker would fail.
        configure_mappers()
        mapper: Mapper[Any] = inspect(model)
        table = mapper.local_table
        self.mapper = mapper
        self.keys = tuple(mapper.get_property_by_column(c).key for c in table.columns)
        self.primary = tuple(i for i, c in enumerate(table.columns) if c.primary_key)


_shapes: dict[type[Any], _Shape] = {}


def pair(db: AsyncSession, row: Sequence[Any] | None, first: type[T], second: type[U]
         ) -> tuple[T | None, U | None]:
    """The two instances of a row that joins ``first``'s table to ``second``'s (all the
    columns of each, in that order), persistent in ``db``; ``(None, None)`` for no row."""
    if row is None:
        return None, None
    split = len(_shape(first).keys)
    return persistent(db, first, row[:split]), persistent(db, second, row[split:])


def persistent(db: AsyncSession, model: type[T], values: Sequence[Any]) -> T | None:
    """The ``model`` instance whose column values are ``values`` (in its table's column
    order), persistent in ``db``; ``None`` where the primary key is NULL (the missing side
    of an outer join)."""
    shape = _shape(model)
    session = db.sync_session
    key = shape.mapper.identity_key_from_primary_key(tuple(values[i] for i in shape.primary))
    if any(v is None for v in key[1]):
        return None
    held = session.identity_map.get(key)
    if held is not None:
        found: T = held
        return found
    instance: T = shape.mapper.class_manager.new_instance()
    # What the ORM's own loading does with a row whose identity the session does not
    # hold (``loading._instance``): the values in the instance's dict (nothing pending,
    # nothing expired), its identity, and the instance in the session's identity map.
    # ``make_transient_to_detached`` and ``Session.add`` reach the same state through a
    # commit of every attribute, an expiry check of each and a cascade over the
    # relationships: ~80 k instructions an object more (bench/instructions.py).
    state = instance_state(instance)
    state.dict.update(zip(shape.keys, values, strict=True))
    state.key = key
    state.identity_token = key[2]
    state.session_id = session.hash_key
    session.identity_map._add_unpresent(state, key)
    return instance


def plain(model: type[T], values: Mapping[str, Any]) -> T:
    """A ``model`` instance holding ``values``, outside any session: a row that is only
    read (an API key, an app). Made as the ORM's loading makes one, the values put in
    the instance's dict; calling the class (``ApiKey(**values)``) sets each attribute
    through the instrumentation instead, recording each one as a change nobody reads."""
    instance: T = _shape(model).mapper.class_manager.new_instance()
    instance_state(instance).dict.update(values)
    return instance


def _shape(model: type[Any]) -> _Shape:
    shape = _shapes.get(model)
    if shape is None:
        shape = _shapes[model] = _Shape(model)
    return shape
