package ui

import (
	"bytes"
	"io"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
)

// Table lays out rows in aligned columns for a person: every row is exactly one line,
// whatever its cells hold. A cell's newlines (an error with a second line, a command's
// output) are joined with "; ", tabs and carriage returns become spaces, and other control
// characters are shown escaped as SafeWriter shows them, so a two-line detail can never push
// the verdicts below it onto the wrong rows. Colour (SGR) in a cell takes no width, so a
// painted cell does not skew its column. Columns are separated by two spaces, as
// text/tabwriter with padding 2 did; the last column is not padded.
type Table struct {
	header []string
	rows   [][]string
}

// NewTable starts a table; with no header it prints only the rows.
func NewTable(header ...string) *Table { return &Table{header: header} }

// Row adds one row. A row shorter than the others is padded with empty cells.
func (t *Table) Row(cells ...string) { t.rows = append(t.rows, cells) }

// Len is the number of rows added.
func (t *Table) Len() int { return len(t.rows) }

// Render writes the table to w, one line per row (and one for the header).
func (t *Table) Render(w io.Writer) error {
	if len(t.rows) == 0 && len(t.header) == 0 {
		return nil
	}
	tw := table.NewWriter()
	style := table.StyleDefault
	style.Options = table.OptionsNoBordersAndSeparators
	style.Box.PaddingLeft = ""
	style.Box.PaddingRight = "  "
	style.Format.Header = text.FormatDefault // headers as given, not upper-cased
	tw.SetStyle(style)
	tw.SuppressTrailingSpaces()
	// Left, always: go-pretty right-aligns a column it takes for numbers (one with no rows).
	cols := len(t.header)
	for _, r := range t.rows {
		cols = max(cols, len(r))
	}
	configs := make([]table.ColumnConfig, cols)
	for i := range configs {
		configs[i] = table.ColumnConfig{Number: i + 1, Align: text.AlignLeft, AlignHeader: text.AlignLeft}
	}
	tw.SetColumnConfigs(configs)
	if len(t.header) > 0 {
		tw.AppendHeader(asRow(t.header))
	}
	for _, r := range t.rows {
		tw.AppendRow(asRow(r))
	}
	_, err := io.WriteString(w, tw.Render()+"\n")
	return err
}

func asRow(cells []string) table.Row {
	row := make(table.Row, len(cells))
	for i, c := range cells {
		row[i] = OneLine(c)
	}
	return row
}

// OneLine is s as it can stand in one cell of one line: lines joined with "; " (blank ones
// dropped), tabs and carriage returns as spaces, other control characters escaped, colour kept.
func OneLine(s string) string {
	if strings.ContainsAny(s, "\n\r\t\v\f") {
		s = strings.NewReplacer("\r\n", "\n", "\r", "\n", "\v", "\n", "\f", "\n", "\t", " ").Replace(s)
		lines := strings.Split(s, "\n")
		kept := lines[:0]
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				kept = append(kept, l)
			}
		}
		s = strings.Join(kept, "; ")
	}
	if clean([]byte(s)) {
		return s
	}
	var b bytes.Buffer
	_, _ = SafeWriter{&b}.Write([]byte(s))
	return b.String()
}
