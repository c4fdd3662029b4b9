// Plant time and wall time. Stage times, holds and their countdown are plant time: the
// built-in simulator's clock runs its speed times faster than the wall clock (and a demo
// may move it ahead); on a real plant the two are one. A stope's answer states the pace
// (`clock.plant_speed`); where an answer does not, the page learns it from how a hold's
// time left falls between two answers, and says so until it has.

import { app } from "./state.js";

// Plant time may run faster than this screen's clock; never faster than this.
export const MAX_PLANT_PACE = 1000;

// The pace learned last (plant seconds per wall second), shared by every view.
const learned = { pace: null };

export const simulated = () => Boolean(app.status && app.status.simulator);

// A countdown in plant time, told the time left with every answer; between answers it
// counts on at the pace the answers show (a jump of the plant clock is no pace).
export class PlantCountdown {
  constructor() {
    this.key = null;
    this.remaining = null;
    this.at = 0;
    this.pace = learned.pace || 1;
    this.paced = learned.pace !== null;
  }

  // The time left `remaining` (plant s) of countdown `key`, as the service answered at
  // `at` (this screen's clock, ms), with the pace it states (plant s per wall s), if any.
  note(key, remaining, at, statedPace = null) {
    if (typeof statedPace === "number" && statedPace > 0 && statedPace <= MAX_PLANT_PACE) {
      this.pace = statedPace;
      this.paced = true;
      learned.pace = statedPace;
    } else if (key !== null && key === this.key && this.remaining !== null && remaining > 0) {
      const dt = (at - this.at) / 1000;
      const pace = (this.remaining - remaining) / dt;
      if (dt > 0.5 && pace >= 0 && pace <= MAX_PLANT_PACE) {
        this.pace = this.paced ? (this.pace + pace) / 2 : pace;
        this.paced = true;
        learned.pace = this.pace;
      }
    }
    if (key !== this.key && !this.paced) this.pace = learned.pace || 1;
    this.key = key;
    this.remaining = remaining;
    this.at = at;
  }

  left() {
    if (this.remaining === null) return null;
    return Math.max(0, this.remaining - (this.pace * (Date.now() - this.at)) / 1000);
  }

  // The wall seconds `plantS` plant seconds take at the pace seen (null: not known yet).
  wallSeconds(plantS) {
    if (!simulated()) return plantS;
    if (!this.paced || !(this.pace > 0)) return null;
    return plantS / this.pace;
  }
}

// Words for a span of plant time in wall time: on the simulator, at the pace seen.
export function paceText(countdown) {
  if (!simulated()) return "plant time is this screen's wall clock (a real plant)";
  if (!countdown.paced) return "the simulator's plant time: its pace is being measured";
  return `the simulator's plant time runs about ${Math.round(countdown.pace)}× the wall clock`;
}
