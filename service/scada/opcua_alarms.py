"""The alarms of the OPC UA face as Alarms & Conditions (OPC UA Part 9), so a SCADA
that imports alarms from OPC UA sees them.

Each alarm code has an AlarmConditionType instance ``Alarms.<code>.Condition`` (with
HasCondition from the ``Alarms.<code>`` object, its source). Whenever a condition's
state changes (:func:`service.core.alarm_conditions.differs`) an event of that type
goes out from the Server object, where alarm clients subscribe: EventId, SourceNode and
SourceName (the code), Message, Severity (1-1000), ConditionName, Retain,
EnabledState, ActiveState, AckedState, Comment and ClientUserId, and the condition's
NodeId as ConditionId. ConditionRefresh (asyncua's, bound by
``bind_condition_methods``) sends every retained condition again.

A client acknowledges through the condition's own Acknowledge (EventId, Comment),
called on the condition with the method of AcknowledgeableConditionType or the
instance's copy: the caller's role is checked as for every action (scada, admin: else
BadUserAccessDenied), the EventId must be one this condition's current occurrence sent
(else BadEventIdUnknown), an acknowledged condition answers
BadConditionBranchAlreadyAcked, and the acknowledgement runs through the same operation
as the API's; the event that follows carries the comment and the acknowledging user.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from asyncua import ua
from asyncua.common.instantiate_util import instantiate
from asyncua.common.node import Node
from asyncua.server.event_generator import EventGenerator
from asyncua.server.server import Server
from asyncua.ua.object_ids import ObjectIds
from asyncua.ua.status_codes import StatusCodes

from service.core import alarm_conditions as C
from service.core.control.alarms import AlarmCode
from service.core.untrusted import clip
from service.errors import BackfillError
from service.scada.source import Action, Caller

log = logging.getLogger(__name__)

EVENT_IDS_KEPT = 32  # per condition: the EventIds an Acknowledge may name
COMMENT_CHARS = 512

# The condition's own variables that mirror the event's fields (name -> variant type).
_MIRRORED = {
    "EnabledState": ua.VariantType.LocalizedText,
    "EnabledState/Id": ua.VariantType.Boolean,
    "ActiveState": ua.VariantType.LocalizedText,
    "ActiveState/Id": ua.VariantType.Boolean,
    "AckedState": ua.VariantType.LocalizedText,
    "AckedState/Id": ua.VariantType.Boolean,
    "Retain": ua.VariantType.Boolean,
    "Severity": ua.VariantType.UInt16,
    "LastSeverity": ua.VariantType.UInt16,
    "Message": ua.VariantType.LocalizedText,
    "Comment": ua.VariantType.LocalizedText,
    "ClientUserId": ua.VariantType.String,
    "ConditionName": ua.VariantType.String,
    "SourceNode": ua.VariantType.NodeId,
    "SourceName": ua.VariantType.String,
    "EventType": ua.VariantType.NodeId,
    "Time": ua.VariantType.DateTime,
    "Quality": ua.VariantType.StatusCode,
    "BranchId": ua.VariantType.NodeId,
    "ConditionClassId": ua.VariantType.NodeId,
    "ConditionClassName": ua.VariantType.LocalizedText,
}


def _ns0(identifier: int) -> ua.NodeId:
    return ua.NodeId(ua.Int32(identifier))


def _status(code: int) -> ua.StatusCode:
    return ua.StatusCode(ua.UInt32(code))


class _Condition:
    def __init__(self, code: AlarmCode, node: ua.NodeId, source: ua.NodeId) -> None:
        self.code = code
        self.node = node
        self.source = source
        self.generator: EventGenerator | None = None
        self.state: C.ConditionState | None = None
        self.event_ids: deque[bytes] = deque(maxlen=EVENT_IDS_KEPT)
        self.comment = ""
        self.comment_by = ""


class OpcUaAlarms:
    """``caller()`` the calling session's caller when its role may act (None: refused);
    ``acknowledge`` the face's Acknowledge action; ``refresh()`` publishes the model
    again (and so the conditions) after an acknowledgement."""

    def __init__(
        self,
        *,
        caller: Callable[[], Caller | None],
        acknowledge: Action,
        refresh: Callable[[], Awaitable[None]],
    ) -> None:
        self._caller = caller
        self._acknowledge = acknowledge
        self._refresh = refresh
        self._conditions: dict[AlarmCode, _Condition] = {}
        self._by_node: dict[ua.NodeId, _Condition] = {}
        self._server: Server | None = None

    async def build(
        self, server: Server, sources: dict[AlarmCode, Node], nid: Callable[[str], ua.NodeId]
    ) -> None:
        """A condition under each alarm's object; the methods bound."""
        self._server = server
        isession = server.iserver.isession
        condition_type = server.get_node(_ns0(ObjectIds.AlarmConditionType))
        for code, source in sources.items():
            [node, *_] = await instantiate(
                source,
                condition_type,
                nodeid=nid(f"Backfill.Alarms.{code.value}.Condition"),
                bname=ua.QualifiedName("Condition", source.nodeid.NamespaceIndex),
                instantiate_optional=False,
            )
            await source.add_reference(node.nodeid, _ns0(ObjectIds.HasCondition))
            condition = _Condition(code, node.nodeid, source.nodeid)
            generator = EventGenerator(isession)
            await generator.init(
                _ns0(ObjectIds.AlarmConditionType),
                emitting_node=_ns0(ObjectIds.Server),
                add_generates_event=False,
            )
            ev = generator.event
            ev.SourceNode = source.nodeid
            ev.SourceName = code.value
            ev.NodeId = node.nodeid  # the ConditionId
            ev.ConditionName = code.value
            ev.ConditionClassId = _ns0(ObjectIds.ProcessConditionClassType)
            ev.ConditionClassName = ua.LocalizedText("Process")
            ev.BranchId = ua.NodeId()
            ev.Quality = _status(StatusCodes.Good)
            setattr(ev, "EnabledState", ua.LocalizedText("Enabled"))  # noqa: B010
            setattr(ev, "EnabledState/Id", True)
            condition.generator = generator
            self._conditions[code] = condition
            self._by_node[node.nodeid] = condition
            isession.add_method_callback(
                nid(f"Backfill.Alarms.{code.value}.Condition.Acknowledge"), self._on_acknowledge
            )
            for name in ("Enable", "Disable", "AddComment"):
                isession.add_method_callback(
                    nid(f"Backfill.Alarms.{code.value}.Condition.{name}"), _not_supported
                )
        isession.add_method_callback(
            _ns0(ObjectIds.AcknowledgeableConditionType_Acknowledge), self._on_acknowledge
        )
        for method in (
            ObjectIds.ConditionType_Enable,
            ObjectIds.ConditionType_Disable,
            ObjectIds.ConditionType_AddComment,
        ):
            isession.add_method_callback(_ns0(method), _not_supported)

    async def update(self, alarms: Any) -> None:
        """The snapshot's alarm list: an event for every condition that changed."""
        for code, state in C.conditions(alarms).items():
            condition = self._conditions.get(code)
            if condition is None:
                continue
            if condition.state is None and not state.retain:
                self._fill(condition, state)  # a normal condition: its variables, no event
                assert condition.generator is not None
                await self._mirror(condition, condition.generator.event)
            elif C.differs(condition.state, state):
                await self._emit(condition, state)
            condition.state = state

    async def _emit(self, condition: _Condition, state: C.ConditionState) -> None:
        generator = condition.generator
        assert generator is not None
        ev = self._fill(condition, state)
        await generator.trigger(time_attr=datetime.now(UTC))
        event_id = ev.EventId.Value if isinstance(ev.EventId, ua.Variant) else ev.EventId
        condition.event_ids.append(bytes(event_id))
        await self._mirror(condition, ev)

    def _fill(self, condition: _Condition, state: C.ConditionState) -> Any:
        """The event's fields for ``state``."""
        generator = condition.generator
        assert generator is not None
        previous = condition.state
        if state.active and (previous is None or previous.since != state.since):
            condition.event_ids.clear()  # a new occurrence: earlier events are history
            condition.comment = condition.comment_by = ""
        ev = generator.event
        ev.Retain = state.retain
        ev.Severity = state.severity
        ev.LastSeverity = previous.severity if previous is not None else state.severity
        ev.Message = ua.LocalizedText(state.message)
        ev.Comment = ua.LocalizedText(condition.comment)
        ev.ClientUserId = condition.comment_by or state.acked_by
        setattr(ev, "ActiveState", ua.LocalizedText("Active" if state.active else "Inactive"))  # noqa: B010
        setattr(ev, "ActiveState/Id", state.active)
        setattr(  # noqa: B010
            ev, "AckedState", ua.LocalizedText("Acknowledged" if state.acked else "Unacknowledged")
        )
        setattr(ev, "AckedState/Id", state.acked)
        return ev

    async def _mirror(self, condition: _Condition, ev: Any) -> None:
        """The condition's variables read as its last event says."""
        assert self._server is not None
        base = str(condition.node.Identifier)
        for field, variant_type in _MIRRORED.items():
            value = getattr(ev, field, None)
            if value is None:
                continue
            node = ua.NodeId(
                ua.String(f"{base}.{field.replace('/', '.')}"), condition.node.NamespaceIndex
            )
            await self._server.write_attribute_value(
                node, ua.DataValue(ua.Variant(value, variant_type))
            )

    async def _on_acknowledge(self, parent: ua.NodeId, *arguments: Any) -> Any:
        condition = self._by_node.get(parent)
        if condition is None:
            return _status(StatusCodes.BadNodeIdUnknown)
        caller = self._caller()
        if caller is None:
            return _status(StatusCodes.BadUserAccessDenied)
        values = [a.Value if isinstance(a, ua.Variant) else a for a in arguments]
        if len(values) != 2 or not isinstance(values[0], bytes | bytearray):
            return _status(StatusCodes.BadInvalidArgument)
        event_id, comment = bytes(values[0]), values[1]
        if event_id not in condition.event_ids:
            return _status(StatusCodes.BadEventIdUnknown)
        if condition.state is not None and condition.state.acked:
            return _status(StatusCodes.BadConditionBranchAlreadyAcked)
        text = comment.Text if isinstance(comment, ua.LocalizedText) else str(comment or "")
        try:
            await self._acknowledge(condition.code.value, caller)
        except BackfillError as err:
            log.warning(
                "OPC UA Acknowledge of %s by %s refused: %s",
                condition.code.value,
                clip(caller.user),
                clip(err.detail, 200),
            )
            return _status(StatusCodes.BadInvalidState)
        condition.comment = (text or "")[:COMMENT_CHARS]
        condition.comment_by = caller.user or caller.who
        await self._refresh()
        return []


async def _not_supported(parent: ua.NodeId, *arguments: Any) -> ua.StatusCode:
    """Enable, Disable and AddComment: the service's alarms are always enabled."""
    return _status(StatusCodes.BadNotSupported)
