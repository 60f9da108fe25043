from audiences.v1 import profiles_pb2 as _profiles_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListAccountLinksRequest(_message.Message):
    __slots__ = ("account_id", "after", "limit")
    ACCOUNT_ID_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    account_id: str
    after: LinkCursor
    limit: int
    def __init__(self, account_id: _Optional[str] = ..., after: _Optional[_Union[LinkCursor, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class LinkCursor(_message.Message):
    __slots__ = ("linked_ms", "profile")
    LINKED_MS_FIELD_NUMBER: _ClassVar[int]
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    linked_ms: int
    profile: int
    def __init__(self, linked_ms: _Optional[int] = ..., profile: _Optional[int] = ...) -> None: ...

class AccountLink(_message.Message):
    __slots__ = ("cursor", "link")
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    LINK_FIELD_NUMBER: _ClassVar[int]
    cursor: LinkCursor
    link: _profiles_pb2.ProfileLink
    def __init__(self, cursor: _Optional[_Union[LinkCursor, _Mapping]] = ..., link: _Optional[_Union[_profiles_pb2.ProfileLink, _Mapping]] = ...) -> None: ...

class ListAccountLinksResponse(_message.Message):
    __slots__ = ("links",)
    LINKS_FIELD_NUMBER: _ClassVar[int]
    links: _containers.RepeatedCompositeFieldContainer[AccountLink]
    def __init__(self, links: _Optional[_Iterable[_Union[AccountLink, _Mapping]]] = ...) -> None: ...
