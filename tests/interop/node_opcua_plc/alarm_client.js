// A SCADA's alarm and tag import, built on node-opcua: it logs in to the service's OPC UA
// server, resolves a measurement by browse path in the service's namespace, reads its
// EngineeringUnits and EURange, subscribes to Alarms & Conditions events on the Server
// object, calls ConditionRefresh, and acknowledges a condition when told to. It prints
// one JSON line per thing it saw and reads one JSON command per line on stdin:
//   {"ack": {"conditionId": "ns=2;s=...", "eventId": "<hex>", "comment": "..."}}
//   {"refresh": true}
//   {"quit": true}
//
// node alarm_client.js <endpoint> <user> <key> <None|SignAndEncrypt>
"use strict";
const readline = require("readline");
const {
    OPCUAClient,
    MessageSecurityMode,
    SecurityPolicy,
    AttributeIds,
    UserTokenType,
    ClientSubscription,
    ClientMonitoredItem,
    DataType,
    TimestampsToReturn,
    constructEventFilter,
    makeBrowsePath,
} = require("node-opcua");

const NAMESPACE = "urn:backfill:service";
const [endpoint, user, key, security] = process.argv.slice(2);
const FIELDS = [
    "EventId",
    "EventType",
    "ConditionName",
    "SourceName",
    "Message",
    "Severity",
    "Retain",
    "ActiveState",
    "ActiveState.Id",
    "AckedState",
    "AckedState.Id",
    "Comment",
    "ClientUserId",
    "ConditionId",
];

function say(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

function plain(variant) {
    const value = variant ? variant.value : null;
    if (value === null || value === undefined) return null;
    if (Buffer.isBuffer(value)) return value.toString("hex");
    if (value.text !== undefined) return value.text;
    if (typeof value.toString === "function" && value.namespace !== undefined) return value.toString();
    return value;
}

async function propertyOf(session, nodeId, name) {
    const result = await session.translateBrowsePath(makeBrowsePath(nodeId, `.${name}`));
    if (!result.targets || result.targets.length === 0) return null;
    const dv = await session.read({ nodeId: result.targets[0].targetId, attributeId: AttributeIds.Value });
    return dv.value.value;
}

async function main() {
    const secured = security === "SignAndEncrypt";
    const client = OPCUAClient.create({
        endpointMustExist: false,
        securityMode: secured ? MessageSecurityMode.SignAndEncrypt : MessageSecurityMode.None,
        securityPolicy: secured ? SecurityPolicy.Basic256Sha256 : SecurityPolicy.None,
        connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
    });
    await client.connect(endpoint);
    const session = await client.createSession({ type: UserTokenType.UserName, userName: user, password: key });
    const namespaces = await session.readNamespaceArray();
    const ns = namespaces.indexOf(NAMESPACE);

    const path = `/Objects/${ns}:Plant/${ns}:Measurements/${ns}:paste_density_pv`;
    const found = await session.translateBrowsePath(makeBrowsePath("RootFolder", path));
    const density = found.targets && found.targets.length ? found.targets[0].targetId : null;
    const ready = { kind: "ready", namespace: ns, browse_path: path, found: density ? density.toString() : null };
    if (density) {
        const typeDef = await session.browse({ nodeId: density, referenceTypeId: "HasTypeDefinition", browseDirection: 0 });
        ready.type_definition = typeDef.references.map((r) => r.browseName.name);
        const range = await propertyOf(session, density, "EURange");
        ready.eu_range = range ? { low: range.low, high: range.high } : null;
        const units = await propertyOf(session, density, "EngineeringUnits");
        ready.engineering_units = units
            ? {
                  namespace_uri: units.namespaceUri,
                  unit_id: units.unitId,
                  display: units.displayName ? units.displayName.text : null,
              }
            : null;
    }

    const subscription = ClientSubscription.create(session, {
        requestedPublishingInterval: 100,
        requestedMaxKeepAliveCount: 20,
        requestedLifetimeCount: 100,
        maxNotificationsPerPublish: 1000,
        publishingEnabled: true,
        priority: 10,
    });
    await new Promise((resolve) => subscription.on("started", resolve));
    const item = ClientMonitoredItem.create(
        subscription,
        { nodeId: "ns=0;i=2253", attributeId: AttributeIds.EventNotifier },
        { queueSize: 1000, filter: constructEventFilter(FIELDS), discardOldest: false },
        TimestampsToReturn.Neither
    );
    item.on("changed", (eventFields) => {
        const event = { kind: "event" };
        FIELDS.forEach((name, i) => (event[name] = plain(eventFields[i])));
        say(event);
    });
    await new Promise((resolve) => setTimeout(resolve, 300));

    async function refresh() {
        const result = await session.call({
            objectId: "ns=0;i=2782",
            methodId: "ns=0;i=3875",
            inputArguments: [{ dataType: DataType.UInt32, value: subscription.subscriptionId }],
        });
        say({ kind: "refresh", status: result.statusCode.name });
    }
    say(ready);
    await refresh();

    const lines = readline.createInterface({ input: process.stdin });
    for await (const line of lines) {
        const command = JSON.parse(line);
        if (command.quit) break;
        if (command.refresh) await refresh();
        if (command.ack) {
            const result = await session.call({
                objectId: command.ack.conditionId,
                methodId: "ns=0;i=9111",
                inputArguments: [
                    { dataType: DataType.ByteString, value: Buffer.from(command.ack.eventId, "hex") },
                    { dataType: DataType.LocalizedText, value: { text: command.ack.comment } },
                ],
            });
            say({ kind: "ack", status: result.statusCode.name });
        }
    }
    await subscription.terminate();
    await session.close();
    await client.disconnect();
    say({ kind: "done" });
}

main().catch((err) => {
    say({ kind: "error", error: String(err && err.message ? err.message : err) });
    process.exit(2);
});
