// Where the sound goes: the media element through a Web Audio gain (so loudness
// normalisation can raise a quiet track as well as lower a loud one), or, without Web
// Audio, the element's own volume (which can only lower it).

export class AudioOutput {
  constructor(audio) {
    this.audio = audio;
    this.graph = null; // {context, gain} once unlock() made one
    this.level = 1;
  }

  /** Make (or wake) the graph element -> gain -> speakers. Browsers let an AudioContext
   *  start only inside a user gesture: call it from the click that asked for sound. */
  unlock() {
    const Context = window.AudioContext ?? window.webkitAudioContext;
    if (!this.graph && Context) {
      try {
        const context = new Context();
        const gain = context.createGain();
        context.createMediaElementSource(this.audio).connect(gain).connect(context.destination);
        this.graph = { context, gain };
      } catch {
        this.graph = null; // the element's volume will do (attenuation only)
      }
      this.set(this.level);
    }
    if (this.graph?.context.state === 'suspended') this.graph.context.resume().catch(() => {});
  }

  /** The overall linear level: normalisation gain times volume. */
  set(level) {
    this.level = level;
    if (this.graph) {
      this.audio.volume = 1;
      const { context, gain } = this.graph;
      gain.gain.setTargetAtTime(level, context.currentTime, 0.02); // a glide, not a click
    } else {
      this.audio.volume = Math.min(1, Math.max(0, level));
    }
  }
}
