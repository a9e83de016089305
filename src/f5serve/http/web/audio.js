// Streamed raw PCM (s16le, 24 kHz mono) played with Web Audio as it arrives, kept for a WAV file.

export const SAMPLE_RATE = 24000;
const LEAD_SECONDS = 0.05; // scheduling margin for the first piece

export class PcmPlayer {
  constructor() {
    this.context = new AudioContext({ sampleRate: SAMPLE_RATE });
    this.nextTime = 0;
    this.odd = null; // a byte left over when a network chunk splits a sample
    this.pieces = [];
    this.samples = 0;
  }

  push(bytes) {
    let data = bytes;
    if (this.odd !== null) {
      data = new Uint8Array(bytes.length + 1);
      data[0] = this.odd;
      data.set(bytes, 1);
      this.odd = null;
    }
    const whole = data.length - (data.length % 2);
    if (data.length !== whole) this.odd = data[whole];
    if (!whole) return;
    const pcm = new Int16Array(data.slice(0, whole).buffer);
    this.pieces.push(pcm);
    this.samples += pcm.length;
    this.play(pcm);
  }

  play(pcm) {
    const buffer = this.context.createBuffer(1, pcm.length, SAMPLE_RATE);
    buffer.copyToChannel(Float32Array.from(pcm, (s) => s / 32768), 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer;
    source.connect(this.context.destination);
    this.nextTime = Math.max(this.nextTime, this.context.currentTime + LEAD_SECONDS);
    source.start(this.nextTime);
    this.nextTime += buffer.duration;
  }

  stop() {
    this.context.close();
  }

  get seconds() {
    return this.samples / SAMPLE_RATE;
  }

  // Everything received, as a 16-bit WAV file.
  wav() {
    return wavBlob(this.pieces, this.samples);
  }
}

export function wavBlob(pieces, samples) {
  const header = new DataView(new ArrayBuffer(44));
  const text = (offset, value) => [...value].forEach((c, i) => header.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  header.setUint32(4, 36 + samples * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  header.setUint32(16, 16, true);
  header.setUint16(20, 1, true); // PCM
  header.setUint16(22, 1, true); // mono
  header.setUint32(24, SAMPLE_RATE, true);
  header.setUint32(28, SAMPLE_RATE * 2, true);
  header.setUint16(32, 2, true);
  header.setUint16(34, 16, true);
  text(36, "data");
  header.setUint32(40, samples * 2, true);
  return new Blob([header, ...pieces], { type: "audio/wav" });
}
