// A SCADA's OPC UA client, built on node-opcua: it logs in to the service's OPC UA
// server with a user name and an API key, browses the objects, reads a measurement,
// subscribes to the pour's placed volume, starts the pour and pauses it, and prints
// what it saw as one JSON line. A refused call is recorded with its status code, not
// thrown, so a test can check both a right and a wrong role.
//
// node scada_client.js <endpoint> <user> <key> <pourId> <watchSeconds>
"use strict";
const {
    OPCUAClient,
    MessageSecurityMode,
    SecurityPolicy,
    AttributeIds,
    UserTokenType,
    TimestampsToReturn,
    ClientSubscription,
    ClientMonitoredItem,
    DataType,
} = require("node-opcua");

const NAMESPACE = "urn:backfill:service";
const [endpoint, user, key, pourId, watchText] = process.argv.slice(2);
const watchMs = 1000 * Number(watchText || "30");

function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

async function call(session, ns, object, method, argument) {
    const result = await session.call({
        objectId: `ns=${ns};s=Backfill.${object}`,
        methodId: `ns=${ns};s=Backfill.${object}.${method}`,
        inputArguments: [{ dataType: DataType.String, value: argument }],
    });
    const out = result.outputArguments && result.outputArguments[0];
    return { status: result.statusCode.name, state: out ? out.value : null };
}

async function main() {
    const client = OPCUAClient.create({
        endpointMustExist: false,
        securityMode: MessageSecurityMode.None,
        securityPolicy: SecurityPolicy.None,
        connectionStrategy: { maxRetry: 2, initialDelay: 200, maxDelay: 1000 },
    });
    const out = {};
    await client.connect(endpoint);
    try {
        const session = await client.createSession({
            type: UserTokenType.UserName,
            userName: user,
            password: key,
        });
        const namespaces = await session.readNamespaceArray();
        const ns = namespaces.indexOf(NAMESPACE);
        out.namespace = ns;
        const objects = await session.browse("ns=0;i=85");
        out.objects = objects.references.map((r) => r.browseName.name);
        const pour = await session.browse(`ns=${ns};s=Backfill.Pour`);
        out.pour_children = pour.references.map((r) => r.browseName.name);
        const density = await session.read({
            nodeId: `ns=${ns};s=Backfill.Plant.Measurements.paste_density_pv`,
            attributeId: AttributeIds.Value,
        });
        out.density = {
            value: density.value.value,
            status: density.statusCode.name,
            source_timestamp: density.sourceTimestamp ? density.sourceTimestamp.toISOString() : null,
        };

        const subscription = ClientSubscription.create(session, {
            requestedPublishingInterval: 200,
            requestedMaxKeepAliveCount: 20,
            requestedLifetimeCount: 100,
            maxNotificationsPerPublish: 100,
            publishingEnabled: true,
            priority: 10,
        });
        out.poured = [];
        out.states = [];
        const watch = (path, into) => {
            const item = ClientMonitoredItem.create(
                subscription,
                { nodeId: `ns=${ns};s=Backfill.${path}`, attributeId: AttributeIds.Value },
                { samplingInterval: 100, discardOldest: true, queueSize: 10 },
                TimestampsToReturn.Both
            );
            item.on("changed", (dv) => into.push(dv.value.value));
        };
        watch("Pour.PouredM3", out.poured);
        watch("Pour.State", out.states);

        // The built-in plant may not take a start at once: retry while it says why.
        const startBy = Date.now() + 30000;
        do {
            out.start = await call(session, ns, "Pour", "Start", pourId);
            if (out.start.status !== "BadInvalidState") break;
            await sleep(500);
        } while (Date.now() < startBy);

        if (out.start.status === "Good") {
            const until = Date.now() + watchMs;
            while (Date.now() < until) {
                const numbers = out.poured.filter((v) => typeof v === "number");
                if (numbers.length >= 2 && numbers[numbers.length - 1] > numbers[0]) break;
                await sleep(300);
            }
        }
        out.pause = await call(session, ns, "Pour", "Pause", pourId);
        await sleep(500);
        await subscription.terminate();
        await session.close();
    } finally {
        await client.disconnect();
    }
    process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((err) => {
    process.stdout.write(JSON.stringify({ error: String(err && err.message ? err.message : err) }) + "\n");
    process.exit(2);
});
