/**
 * Which encoding an SMS needs and how many characters it counts, per 3GPP TS 23.038: the GSM 7-bit
 * default alphabet (160 characters in one segment; the extension table's characters count twice), else
 * UCS-2 (70 UTF-16 units in one segment).
 */
const GSM_BASIC =
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\u001bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
const GSM_EXTENSION = "^{}\\[~]|€\f";

const basic = new Set(GSM_BASIC);
const extension = new Set(GSM_EXTENSION);

export const SEGMENT = { "GSM-7": 160, "UCS-2": 70 } as const;

export function smsEncoding(text: string): { encoding: "GSM-7" | "UCS-2"; length: number } {
  let length = 0;
  for (const char of text) {
    if (basic.has(char)) length += 1;
    else if (extension.has(char)) length += 2;
    else return { encoding: "UCS-2", length: text.length };
  }
  return { encoding: "GSM-7", length };
}

/** Whether the text goes out as a single SMS segment. */
export function fitsOneSegment(text: string): boolean {
  const { encoding, length } = smsEncoding(text);
  return length <= SEGMENT[encoding];
}
