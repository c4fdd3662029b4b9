// An S7-style OPC UA PLC on node-opcua for the backfill service's link interop tests.
//
// Node ids look like a Siemens S7-1500's: ns=<n>;s="DB_Backfill"."PasteDensity".
// Types are a PLC's: REAL -> Float, INT -> Int16, DINT -> Int32, BOOL -> Boolean.
// Like a strict PLC it answers BadWriteNotSupported to a write that carries a
// source or server timestamp. The "PLC program" copies SetpointSeq to SetpointAck.
//
// Usage: node server.js --port 4840
// Prints one line "READY port=<port> ns=<namespace index>" once serving.
// Commands on stdin, one per line:
//   set <Name> <value> [<StatusCodeName>]   e.g. "set PasteDensity 1890 BadSensorFailure"
//   ack on|off                              enable/disable the ack copy
"use strict";

const os = require("os");
const path = require("path");
const readline = require("readline");
const {
    OPCUAServer,
    OPCUACertificateManager,
    DataType,
    StatusCodes,
    AttributeIds,
    MessageSecurityMode,
    SecurityPolicy,
    nodesets,
} = require("node-opcua");

const NAMESPACE = "urn:backfill:s7-test-plc";

// name in DB_Backfill -> [DataType, initial value, writable]
const TAGS = {
    FeedFlow: [DataType.Float, 100.0, false],
    FeedDensity: [DataType.Float, 1450.0, false],
    CementRate: [DataType.Float, 1.0, false],
    SlagRate: [DataType.Float, 4.0, false],
    WaterFlow: [DataType.Float, 5.0, false],
    PasteFlow: [DataType.Float, 100.0, false],
    PasteDensity: [DataType.Float, 1880.0, false],
    PumpPressure: [DataType.Float, 3500.0, false],
    MixerLevel: [DataType.Float, 55.0, false],
    PlantMode: [DataType.Int16, 2, false],
    RemoteEnabled: [DataType.Boolean, true, false],
    SetpointAck: [DataType.Int32, 0, false],
    FeedFlowSP: [DataType.Float, 0.0, true],
    CementRateSP: [DataType.Float, 0.0, true],
    SlagRateSP: [DataType.Float, 0.0, true],
    WaterFlowSP: [DataType.Float, 0.0, true],
    PasteDensitySP: [DataType.Float, 0.0, true],
    RunRequest: [DataType.Boolean, false, true],
    SetpointSeq: [DataType.Int32, 0, true],
    Heartbeat: [DataType.Int32, 0, true],
};

function argPort() {
    const i = process.argv.indexOf("--port");
    return i > 0 ? parseInt(process.argv[i + 1], 10) : 4840;
}

function strictWrites(variable) {
    // S7-1500 style: a write with timestamps is refused before it reaches the value.
    const original = variable.writeAttribute.bind(variable);
    variable.writeAttribute = (context, writeValue, callback) => {
        const dv = writeValue.value;
        const stamped = dv && (dv.sourceTimestamp || dv.serverTimestamp);
        if (writeValue.attributeId === AttributeIds.Value && stamped) {
            const status = StatusCodes.BadWriteNotSupported;
            return callback ? callback(null, status) : Promise.resolve(status);
        }
        return original(context, writeValue, callback);
    };
}

async function main() {
    const port = argPort();
    const pkiRoot = path.join(os.tmpdir(), "backfill-node-opcua-pki");
    const server = new OPCUAServer({
        port,
        resourcePath: "/",
        nodeset_filename: [nodesets.standard],
        securityModes: [MessageSecurityMode.None],
        securityPolicies: [SecurityPolicy.None],
        allowAnonymous: true,
        serverCertificateManager: new OPCUACertificateManager({
            rootFolder: path.join(pkiRoot, "server"),
            automaticallyAcceptUnknownCertificate: true,
        }),
        buildInfo: { productName: "backfill S7-style test PLC" },
    });
    await server.initialize();

    const addressSpace = server.engine.addressSpace;
    const namespace = addressSpace.registerNamespace(NAMESPACE);
    const db = namespace.addObject({
        organizedBy: addressSpace.rootFolder.objects,
        browseName: "DB_Backfill",
        nodeId: 's="DB_Backfill"',
    });
    const variables = {};
    for (const [name, [dataType, initial, writable]] of Object.entries(TAGS)) {
        const access = writable ? "CurrentRead | CurrentWrite" : "CurrentRead";
        const variable = namespace.addVariable({
            componentOf: db,
            browseName: name,
            nodeId: `s="DB_Backfill"."${name}"`,
            dataType: DataType[dataType],
            accessLevel: access,
            userAccessLevel: access,
            minimumSamplingInterval: 50,
        });
        variable.setValueFromSource({ dataType, value: initial });
        strictWrites(variable);
        variables[name] = variable;
    }

    let ackOn = true;
    const timer = setInterval(() => {
        if (!ackOn) return;
        const seq = variables.SetpointSeq.readValue().value.value;
        if (variables.SetpointAck.readValue().value.value !== seq) {
            variables.SetpointAck.setValueFromSource({ dataType: DataType.Int32, value: seq });
        }
    }, 20);

    const rl = readline.createInterface({ input: process.stdin });
    rl.on("line", (line) => {
        const [cmd, a, b, c] = line.trim().split(/\s+/);
        if (cmd === "set" && variables[a]) {
            const dataType = TAGS[a][0];
            const value = dataType === DataType.Boolean ? b === "true" : Number(b);
            const status = c ? StatusCodes[c] : StatusCodes.Good;
            variables[a].setValueFromSource({ dataType, value }, status, new Date());
        } else if (cmd === "ack") {
            ackOn = a === "on";
        }
    });

    await server.start();
    process.stdout.write(`READY port=${port} ns=${namespace.index}\n`);

    const shutdown = async () => {
        clearInterval(timer);
        await server.shutdown(0);
        process.exit(0);
    };
    process.on("SIGTERM", shutdown);
    process.on("SIGINT", shutdown);
}

main().catch((err) => {
    process.stderr.write(`node-opcua PLC failed: ${err && err.stack ? err.stack : err}\n`);
    process.exit(1);
});
