// npm run ttfr: prints the time to first render of a 200-comment thread (median of 5).
import '../tests/ttfr.mjs';
