/** A parsed record of a CSV/TSV file and the 1-based line it starts on. */
export interface DelimitedRecord {
  fields: string[];
  line: number;
}

export interface DelimitedParse {
  records: DelimitedRecord[];
  /** Set when the file ends inside a quoted field. */
  unterminatedQuoteLine?: number;
}

/**
 * RFC 4180 parsing: quoted fields may hold the delimiter, newlines and doubled quotes ("");
 * CRLF or LF line ends; a leading BOM is ignored; blank lines are skipped.
 */
export function parseDelimited(text: string, delimiter: string): DelimitedParse {
  const records: DelimitedRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let field = '';
  let recordLine = 1;
  let inQuotes = false;
  let quoteStartLine = 0;
  let fieldStarted = false; // distinguishes a blank line from a record with one empty field

  const endRecord = () => {
    fields.push(field);
    if (fieldStarted || fields.length > 1 || field !== '') records.push({ fields, line: recordLine });
    fields = [];
    field = '';
    fieldStarted = false;
  };

  for (; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuotes) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          inQuotes = false;
        }
      } else {
        if (ch === '\n') line++;
        field += ch;
      }
      continue;
    }
    if (ch === '"' && field === '') {
      inQuotes = true;
      fieldStarted = true;
      quoteStartLine = line;
    } else if (ch === delimiter) {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += ch;
      fieldStarted = true;
    }
  }
  if (inQuotes) return { records, unterminatedQuoteLine: quoteStartLine };
  if (fieldStarted || field !== '' || fields.length > 0) endRecord();
  return { records };
}
