// An S7-style OPC UA PLC on node-opcua for the backfill service's link interop tests.
//
// Node ids look like a Siemens S7-1500's: ns=<n>;s="DB_Backfill"."PasteDensity".
// Types are a PLC's: REAL -> Float, INT -> Int16, DINT -> Int32, BOOL -> Boolean.
// Like a strict PLC it answers BadWriteNotSupported to a write that carries a
// source or server timestamp. The "PLC program" copies SetpointSeq to SetpointAck.
//
// With --plant the "PLC program" also runs a small paste plant (for a pour end to end):
//   PlantMode (0 stopped, 1 flushing, 2 running, 3 fault) follows RunRequest edges:
//   stopped -> flushing (FLUSH_MS) -> running on a rising edge, running -> flushing ->
//   stopped when RunRequest goes false; a heartbeat unchanged for HEARTBEAT_TIMEOUT_MS
//   stops the plant (safe state) until the next rising edge. Every PLANT_TICK_MS while
//   running: feed flow follows its setpoint (first-order lag), feed density is constant,
//   the binder rates (cement, slag, fly ash) follow theirs (none below PROVEN_FLOW_M3_H
//   of feed: the binder interlock), water follows its setpoint, and the paste flow and
//   density are the volume and mass balance of what goes in. Without --plant the values
//   stay where they are put (the link tests).
//
// Optional tags (CONTRACT "Optional tags"; mapped by tags_optional.toml, not tags.toml):
//   BarricadePressure (REAL, kPa), DivertToDumpSP (BOOL, written by the service) and
//   DivertedToDump (BOOL, the diverter's proven position). With --plant the diverter's
//   proven position follows DivertToDumpSP after DIVERTER_TRAVEL_MS (it keeps its old
//   value while travelling), and the paste pumped while running and not diverted fills
//   a stope of STOPE_AREA_M2: BarricadePressure = paste density x g x fill height (a
//   hydrostatic barricade: this PLC does not model consolidation or arching).
//
// Usage: node server.js [--port 4840] [--plant]     (or env NODE_PLC_PORT=4840)
// Prints one line "READY port=<port> ns=<namespace index>" once serving.
// Commands on stdin, one per line:
//   set <Name> <value> [<StatusCodeName>]   e.g. "set PasteDensity 1890 BadSensorFailure"
//   ack on|off                              enable/disable the ack copy
//   writes                                  print "WRITES <json>": accepted client writes
//                                           per node and variant type, e.g.
//                                           {"CementRateSP": {"Float": 12}}
//   stope reset                             (--plant) a new, empty stope
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
    FlyAshRate: [DataType.Float, 0.0, false],
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
    FlyAshRateSP: [DataType.Float, 0.0, true],
    WaterFlowSP: [DataType.Float, 0.0, true],
    PasteDensitySP: [DataType.Float, 0.0, true],
    RunRequest: [DataType.Boolean, false, true],
    SetpointSeq: [DataType.Int32, 0, true],
    Heartbeat: [DataType.Int32, 0, true],
    // optional tags
    BarricadePressure: [DataType.Float, 0.0, false],
    DivertToDumpSP: [DataType.Boolean, false, true],
    DivertedToDump: [DataType.Boolean, false, false],
};

// The plant behind --plant (times in wall milliseconds, the service runs at speed 1).
const PLANT_TICK_MS = 100;
const FLUSH_MS = 1000;
const HEARTBEAT_TIMEOUT_MS = 5000;
const MODE = { stopped: 0, flushing: 1, running: 2, fault: 3 };
const FEED_DENSITY_KG_M3 = 1900.0; // a tailings slurry of Gs 2.8 at 73.7 % solids
const BINDER_GS = { CementRate: 3.15, SlagRate: 2.9, FlyAshRate: 2.3 };
const PROVEN_FLOW_M3_H = 5.0; // no binder below this feed flow
const MAX_FEED_M3_H = 300.0;
const MAX_BINDER_T_H = 40.0;
const MAX_WATER_M3_H = 120.0;
const LAG_S = { FeedFlow: 2.0, CementRate: 1.0, SlagRate: 1.0, FlyAshRate: 1.0, WaterFlow: 1.0 };
const STATIC_HEAD_M = 20.0;
const FRICTION_KPA_PER_M3_H = 30.0;
const WATER_KG_M3 = 1000.0;
const DIVERTER_TRAVEL_MS = 2000;
const STOPE_AREA_M2 = 2.0; // a small test stope: about 0.25 kPa a second at 100 m3/h

function argValue(flag) {
    const i = process.argv.indexOf(flag);
    return i > 0 ? process.argv[i + 1] : undefined;
}

function argPort() {
    const text = argValue("--port") || process.env.NODE_PLC_PORT || "4840";
    const port = parseInt(text, 10);
    if (!(port > 0 && port < 65536)) throw new Error(`invalid port ${text}`);
    return port;
}

// accepted client writes: node name -> variant type name -> count
const writes = {};

function strictWrites(name, variable) {
    // S7-1500 style: a write with timestamps is refused before it reaches the value.
    const original = variable.writeAttribute.bind(variable);
    variable.writeAttribute = (context, writeValue, callback) => {
        const dv = writeValue.value;
        const stamped = dv && (dv.sourceTimestamp || dv.serverTimestamp);
        if (writeValue.attributeId === AttributeIds.Value && stamped) {
            const status = StatusCodes.BadWriteNotSupported;
            return callback ? callback(null, status) : Promise.resolve(status);
        }
        const count = (err, status) => {
            const good = !err && (!status || status.value === StatusCodes.Good.value);
            if (good && writeValue.attributeId === AttributeIds.Value && dv && dv.value) {
                const type = DataType[dv.value.dataType];
                writes[name] = writes[name] || {};
                writes[name][type] = (writes[name][type] || 0) + 1;
            }
        };
        if (callback) {
            return original(context, writeValue, (err, status) => {
                count(err, status);
                callback(err, status);
            });
        }
        return Promise.resolve(original(context, writeValue)).then((status) => {
            count(null, status);
            return status;
        });
    };
}

// A density gauge (nuclear or Coriolis) always carries a little noise; a reading that
// never moves is what a stuck gauge looks like, and the service treats it as one.
const DENSITY_NOISE_KG_M3 = 1.0;
function gaussian() {
    const u = 1.0 - Math.random();
    return Math.sqrt(-2.0 * Math.log(u)) * Math.cos(2.0 * Math.PI * Math.random());
}

function lag(value, target, tauS, dtS) {
    return value + (target - value) * (1 - Math.exp(-dtS / tauS));
}

function clamp(value, low, high) {
    return Number.isFinite(value) ? Math.min(Math.max(value, low), high) : low;
}

// The plant: a state machine on RunRequest edges and the heartbeat, and the balances.
function makePlant(variables) {
    const read = (name) => variables[name].readValue().value.value;
    const put = (name, value) => {
        variables[name].setValueFromSource({ dataType: TAGS[name][0], value });
    };
    const state = {
        mode: MODE.stopped,
        after: MODE.stopped, // where a flush leads
        flushEnds: 0,
        lastRun: false,
        heartbeat: null,
        heartbeatAt: Date.now(),
        pv: { FeedFlow: 0, CementRate: 0, SlagRate: 0, FlyAshRate: 0, WaterFlow: 0 },
        density: WATER_KG_M3,
        lastTick: Date.now(),
        diverted: false, // the diverter's proven position
        travelSince: null, // when the diverter started towards the other side
        placedM3: 0, // paste placed in the stope
    };
    const flushTo = (now, after) => {
        state.mode = MODE.flushing;
        state.after = after;
        state.flushEnds = now + FLUSH_MS;
    };
    const publish = () => {
        const pv = state.pv;
        let binderTH = 0;
        let binderM3H = 0;
        for (const [name, gs] of Object.entries(BINDER_GS)) {
            binderTH += pv[name];
            binderM3H += pv[name] / gs;
        }
        const pasteM3H = pv.FeedFlow + binderM3H + pv.WaterFlow;
        if (pasteM3H > 0.5) {
            const massKgH =
                pv.FeedFlow * FEED_DENSITY_KG_M3 + binderTH * 1000.0 + pv.WaterFlow * WATER_KG_M3;
            state.density = massKgH / pasteM3H;
        }
        for (const [name, value] of Object.entries(pv)) put(name, value);
        put("FeedDensity", FEED_DENSITY_KG_M3 + DENSITY_NOISE_KG_M3 * gaussian());
        put("PasteFlow", pasteM3H);
        put("PasteDensity", state.density + DENSITY_NOISE_KG_M3 * gaussian());
        put(
            "PumpPressure",
            (state.density * 9.81 * STATIC_HEAD_M) / 1000.0 + FRICTION_KPA_PER_M3_H * pasteM3H
        );
        put("MixerLevel", 50.0);
        put("RemoteEnabled", true);
        if (read("PlantMode") !== state.mode) put("PlantMode", state.mode);
        const heightM = state.placedM3 / STOPE_AREA_M2;
        put("BarricadePressure", (state.density * 9.81 * heightM) / 1000.0);
        if (read("DivertedToDump") !== state.diverted) put("DivertedToDump", state.diverted);
    };
    const pasteFlowM3H = () => {
        const pv = state.pv;
        let binderM3H = 0;
        for (const [name, gs] of Object.entries(BINDER_GS)) binderM3H += pv[name] / gs;
        return pv.FeedFlow + binderM3H + pv.WaterFlow;
    };
    const moveDiverter = (now) => {
        const command = read("DivertToDumpSP") === true;
        if (command === state.diverted) {
            state.travelSince = null;
        } else if (state.travelSince === null) {
            state.travelSince = now;
        } else if (now - state.travelSince >= DIVERTER_TRAVEL_MS) {
            state.diverted = command;
            state.travelSince = null;
        }
    };
    const tick = () => {
        const now = Date.now();
        const dtS = Math.min((now - state.lastTick) / 1000.0, 1.0);
        state.lastTick = now;

        const heartbeat = read("Heartbeat");
        if (heartbeat !== state.heartbeat) {
            state.heartbeat = heartbeat;
            state.heartbeatAt = now;
        }
        const commsFault = now - state.heartbeatAt > HEARTBEAT_TIMEOUT_MS;
        const run = read("RunRequest") === true;
        const rising = run && !state.lastRun;
        state.lastRun = run;
        const starting = state.mode === MODE.running || state.after === MODE.running;
        if (state.mode !== MODE.stopped && starting && (!run || commsFault)) {
            flushTo(now, MODE.stopped);
        } else if (state.mode === MODE.stopped && rising && !commsFault) {
            flushTo(now, MODE.running);
        }
        if (state.mode === MODE.flushing && now >= state.flushEnds) {
            state.mode = state.after;
        }

        const running = state.mode === MODE.running;
        const pv = state.pv;
        const feedSp = running ? clamp(read("FeedFlowSP"), 0, MAX_FEED_M3_H) : 0;
        pv.FeedFlow = lag(pv.FeedFlow, feedSp, LAG_S.FeedFlow, dtS);
        const binderAllowed = running && pv.FeedFlow >= PROVEN_FLOW_M3_H;
        for (const name of Object.keys(BINDER_GS)) {
            const sp = binderAllowed ? clamp(read(`${name}SP`), 0, MAX_BINDER_T_H) : 0;
            pv[name] = lag(pv[name], sp, LAG_S[name], dtS);
        }
        const waterSp = running ? clamp(read("WaterFlowSP"), 0, MAX_WATER_M3_H) : 0;
        pv.WaterFlow = lag(pv.WaterFlow, waterSp, LAG_S.WaterFlow, dtS);
        // The paste goes where the diverter was proven during this scan.
        if (running && !state.diverted) state.placedM3 += (pasteFlowM3H() * dtS) / 3600.0;
        moveDiverter(now);
        publish();
    };
    const resetStope = () => {
        state.placedM3 = 0;
        publish();
    };
    return { tick, publish, resetStope };
}

async function main() {
    const port = argPort();
    const withPlant = process.argv.includes("--plant");
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
        strictWrites(name, variable);
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

    let plantTimer = null;
    let plant = null;
    if (withPlant) {
        plant = makePlant(variables);
        plant.publish();
        plantTimer = setInterval(plant.tick, PLANT_TICK_MS);
    }

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
        } else if (cmd === "writes") {
            process.stdout.write(`WRITES ${JSON.stringify(writes)}\n`);
        } else if (cmd === "stope" && a === "reset" && plant) {
            plant.resetStope();
        }
    });

    await server.start();
    process.stdout.write(`READY port=${port} ns=${namespace.index}\n`);

    const shutdown = async () => {
        clearInterval(timer);
        if (plantTimer) clearInterval(plantTimer);
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
