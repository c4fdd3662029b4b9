// What each role is offered (the API enforces the same; the page only leaves out what
// would be refused). A lab key gets the lab's views, an engineer the engineering views,
// an operator (scada, hmi) the plant's.

import { session } from "./api.js";

export const ROLE_NAMES = {
  hmi: "hmi (read-only)",
  scada: "scada (operator)",
  engineer: "engineer",
  lab: "lab",
  admin: "admin",
};

// The views, in the order of the navigation.
export const SECTIONS = {
  lab: "Lab",
  samples: "Samples",
  plant: "Plant",
  pours: "Pours",
  design: "Design",
  recipes: "Recipes",
  calibrations: "Calibrations",
  stopes: "Stopes",
  reconciliations: "Gs and Cw",
};

const OPERATOR = ["plant", "pours", "recipes", "stopes"];
const ROLE_SECTIONS = {
  hmi: OPERATOR,
  scada: OPERATOR,
  lab: ["lab", "samples", "pours", "stopes"],
  engineer: ["plant", "pours", "design", "recipes", "calibrations", "stopes", "reconciliations", "samples"],
  admin: Object.keys(SECTIONS),
};

export function sectionsOf(role) {
  return ROLE_SECTIONS[role] || OPERATOR;
}

export function homeOf(role) {
  return { lab: "lab", engineer: "design" }[role] || "plant";
}

const is = (...roles) => (role = session.role) => roles.includes(role) || role === "admin";

export const may = {
  acknowledge: is("scada"),
  runPours: is("scada"),
  release: is("engineer"),
  engineer: is("engineer"),
  enterResults: is("lab"),
};
