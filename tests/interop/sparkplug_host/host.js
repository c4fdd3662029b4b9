// A Sparkplug B host application, built on Eclipse Tahu's payload codec
// (sparkplug-payload) and MQTT.js: it subscribes to one group, decodes every message,
// names DATA metrics from the aliases of the last birth (as a host must: DATA carries
// aliases only), and on command publishes its STATE and writes device or node commands
// as a host writes a tag (by alias, with the datatype the birth gave). One JSON line per
// message on stdout; one JSON command per line on stdin:
//   {"state": {"host": "SCADA1", "online": true, "timestamp": 1700000000000}}
//   {"dcmd": {"edge": "PastePlant", "device": "Plant", "metric": "Pour/Start", "value": "id"}}
//   {"ncmd": {"edge": "PastePlant", "metric": "Node Control/Rebirth", "value": true}}
//   {"quit": true}
//
// node host.js <mqtt url> <group> [<ca.pem> <cert.pem> <key.pem> <username> <password>]
"use strict";
const fs = require("fs");
const readline = require("readline");
const mqtt = require("mqtt");
const sparkplug = require("sparkplug-payload").get("spBv1.0");
// Tahu's generated protobuf classes: what the payload carries on the wire, field by field.
const Wire = require("sparkplug-payload/lib/sparkplugPayloadProto").org.eclipse.tahu.protobuf.Payload;

const [url, group, ca, cert, key, username, password] = process.argv.slice(2);

function say(obj) {
    process.stdout.write(JSON.stringify(obj) + "\n");
}

function plain(value) {
    if (value === null || value === undefined) return null;
    if (typeof value === "object" && typeof value.toNumber === "function") return value.toNumber();
    if (Buffer.isBuffer(value)) return value.toString("hex");
    return value;
}

// Per edge node (and device): alias -> {name, type} from the last birth.
const births = {};

function describe(kind, topic, payload, raw) {
    const parts = topic.split("/");
    const scope = parts.length > 4 ? `${parts[3]}/${parts[4]}` : parts[3];
    const isBirth = kind === "NBIRTH" || kind === "DBIRTH";
    if (isBirth) births[scope] = {};
    const known = births[scope] || {};
    const metrics = (payload.metrics || []).map((m, i) => {
        const alias = plain(m.alias);
        const wire = raw.metrics[i];
        const typeSent = wire.hasOwnProperty("datatype") && wire.datatype !== 0;
        const entry = {
            alias,
            name_sent: wire.hasOwnProperty("name") && wire.name !== "",
            type_sent: typeSent,
            name: m.name || (alias !== null && known[alias] ? known[alias].name : null),
            type: (typeSent && m.type) || (alias !== null && known[alias] ? known[alias].type : null),
            // Without a datatype (DATA) Tahu's decoder cannot pick the value: read the
            // field the wire carries, as a host does with the type from the birth.
            value: wire.isNull ? null : plain(typeSent ? m.value : wire[wire.value]),
            is_null: Boolean(wire.isNull),
            timestamp: plain(m.timestamp),
            properties: {},
        };
        if (m.properties) {
            for (const [k, v] of Object.entries(m.properties)) {
                entry.properties[k] = { type: v.type, value: plain(v.value) };
            }
        }
        if (isBirth && alias !== null) births[scope][alias] = { name: m.name, type: m.type };
        return entry;
    });
    return { kind, topic, seq: plain(payload.seq), timestamp: plain(payload.timestamp), metrics };
}

function command(kind, spec) {
    const scope = spec.device ? `${spec.edge}/${spec.device}` : spec.edge;
    const known = births[scope] || {};
    const found = Object.entries(known).find(([, m]) => m.name === spec.metric);
    if (!found) {
        say({ kind: "error", error: `no born metric ${spec.metric} of ${scope}` });
        return;
    }
    const [alias, metric] = found;
    const payload = {
        timestamp: Date.now(),
        metrics: [{ alias: Number(alias), type: metric.type, value: spec.value }],
    };
    const tail = spec.device ? `/${spec.device}` : "";
    client.publish(`spBv1.0/${group}/${kind}/${spec.edge}${tail}`, sparkplug.encodePayload(payload), { qos: 0 });
    say({ kind: "sent", command: kind, metric: spec.metric, alias: Number(alias) });
}

const options = { clean: true, clientId: `tahu-host-${group}`, reconnectPeriod: 0 };
if (ca) {
    options.ca = fs.readFileSync(ca);
    options.cert = fs.readFileSync(cert);
    options.key = fs.readFileSync(key);
    options.rejectUnauthorized = true;
}
if (username) {
    options.username = username;
    options.password = password;
}
const client = mqtt.connect(url, options);
client.on("error", (err) => say({ kind: "error", error: String(err.message || err) }));
client.on("connect", () => {
    client.subscribe([`spBv1.0/${group}/#`, "spBv1.0/STATE/#"], { qos: 1 }, (err) => {
        if (err) say({ kind: "error", error: String(err) });
        else say({ kind: "connected" });
    });
});
client.on("message", (topic, message) => {
    const kind = topic.split("/")[topic.startsWith("spBv1.0/STATE/") ? 1 : 2];
    if (kind === "STATE") {
        say({ kind: "STATE", topic, body: JSON.parse(message.toString()) });
        return;
    }
    if (kind === "NCMD" || kind === "DCMD") return; // our own
    try {
        say(describe(kind, topic, sparkplug.decodePayload(message), Wire.decode(message)));
    } catch (err) {
        say({ kind: "error", topic, error: String(err.message || err) });
    }
});

const lines = readline.createInterface({ input: process.stdin });
lines.on("line", (line) => {
    const c = JSON.parse(line);
    if (c.quit) {
        client.end(false, {}, () => process.exit(0));
        return;
    }
    if (c.state) {
        const body = JSON.stringify({ online: c.state.online, timestamp: c.state.timestamp });
        client.publish(`spBv1.0/STATE/${c.state.host}`, body, { qos: 1, retain: true }, () =>
            say({ kind: "sent", command: "STATE", online: c.state.online })
        );
    }
    if (c.dcmd) command("DCMD", c.dcmd);
    if (c.ncmd) command("NCMD", c.ncmd);
});
