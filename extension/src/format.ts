/**
 * How the sidebar writes values: the rules of mlops_nb/format.py (keep the two in step), so a
 * duration or a metric reads the same here as in the status widget and `mlops-nb show`.
 * Missing values (null, undefined, NaN) are an empty string; each caller decides what to show.
 */

function missing(value: number | null | undefined): value is null | undefined {
  return value === null || value === undefined || Number.isNaN(value);
}

/** `<0.01 s`, `3.50 s`, `12.3 s`, `2m 05s`, `1h 02m` (format.duration). */
export function formatDuration(seconds: number | null | undefined): string {
  if (missing(seconds) || !isFinite(seconds) || seconds < 0) {
    return '';
  }
  if (seconds < 0.005) {
    return '<0.01 s';
  }
  if (seconds < 10) {
    return `${seconds.toFixed(2)} s`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const whole = Math.floor(seconds);
  const pad = (n: number) => String(n).padStart(2, '0');
  if (whole < 3600) {
    return `${Math.floor(whole / 60)}m ${pad(whole % 60)}s`;
  }
  return `${Math.floor(whole / 3600)}h ${pad(Math.floor((whole % 3600) / 60))}m`;
}

/** Numbers to `digits` significant digits, large integers with separators, text as it is (format.number). */
export function formatNumber(value: unknown, digits = 4): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'boolean') {
    return value ? 'True' : 'False';
  }
  if (typeof value !== 'number') {
    return String(value);
  }
  if (Number.isNaN(value)) {
    return '';
  }
  if (!isFinite(value)) {
    return value > 0 ? '∞' : '-∞';
  }
  if (Number.isInteger(value) && Math.abs(value) < 1e15) {
    return Math.abs(value) >= 10000 ? value.toLocaleString('en-US') : String(value);
  }
  // Python's `g`: exponent notation outside [1e-4, 10**digits), trailing zeros dropped.
  const exponent = Math.floor(Math.log10(Math.abs(value)));
  if (exponent < -4 || exponent >= digits) {
    const [mantissa, power] = value.toExponential(digits - 1).split('e');
    const sign = power.startsWith('-') ? '-' : '+';
    const magnitude = power.replace(/^[+-]/, '').padStart(2, '0');
    return `${String(Number(mantissa))}e${sign}${magnitude}`;
  }
  return String(Number(value.toPrecision(digits)));
}

/** Epoch seconds as local `YYYY-MM-DD HH:MM` (format.local_time with MINUTES_FORMAT). */
export function formatTime(epochSeconds: number | null | undefined): string {
  if (missing(epochSeconds)) {
    return '';
  }
  const d = new Date(epochSeconds * 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return (
    `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}`
  );
}

/** How long ago, for recent times (`just now`, `5 min ago`, `3 h ago`), else {@link formatTime}. */
export function formatWhen(epochSeconds: number | null | undefined): string {
  if (missing(epochSeconds) || !epochSeconds) {
    return '';
  }
  const ago = Date.now() / 1000 - epochSeconds;
  if (ago < 60) {
    return 'just now';
  }
  if (ago < 3600) {
    return `${Math.floor(ago / 60)} min ago`;
  }
  if (ago < 86400) {
    return `${Math.floor(ago / 3600)} h ago`;
  }
  return formatTime(epochSeconds);
}

/** A value for a table cell: {@link formatNumber}, `–` when missing, JSON for objects. */
export function formatValue(value: unknown): string {
  if (typeof value === 'object' && value !== null) {
    return JSON.stringify(value);
  }
  return formatNumber(value) || '–';
}
