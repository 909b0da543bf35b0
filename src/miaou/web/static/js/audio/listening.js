// How long a listener has really heard a track, for play reports (docs/audio.md: the node
// counts a play after 30 s). Pure: fed with the media element's clock as it ticks.

export const PLAY_REPORT_S = 30;
const MAX_STEP_S = 2; // a larger jump between two ticks is a seek, not listening

export class Listening {
  constructor(threshold = PLAY_REPORT_S) {
    this.threshold = threshold;
    this.reset();
  }

  /** A new play: nothing heard yet, nothing reported. */
  reset() {
    this.seconds = 0;
    this.last = null;
    this.reported = false;
  }

  /** The clock jumped (a seek): the next tick starts a new stretch. */
  jumped() {
    this.last = null;
  }

  /** One tick of the clock at `t` seconds; `advancing`: playing, not seeking. True once,
   *  on the tick that crosses the threshold: time to report. */
  tick(t, advancing) {
    if (this.last != null && advancing) {
      const step = t - this.last;
      if (step > 0 && step < MAX_STEP_S) this.seconds += step;
    }
    this.last = t;
    if (this.reported || this.seconds < this.threshold) return false;
    this.reported = true;
    return true;
  }

  /** The report did not get through: try again at the next tick. */
  failed() {
    this.reported = false;
  }
}
