package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// streams is where a command reads and writes; tests inject buffers.
type streams struct {
	in       io.Reader
	out      io.Writer
	err      io.Writer
	terminal bool // stdout is a terminal: tables, colour, progress bars
	color    bool
}

func systemStreams() *streams {
	tty := term.IsTerminal(int(os.Stdout.Fd()))
	_, noColor := os.LookupEnv("NO_COLOR")
	return &streams{
		in:       os.Stdin,
		out:      os.Stdout,
		err:      os.Stderr,
		terminal: tty,
		color:    tty && !noColor && os.Getenv("TERM") != "dumb",
	}
}

const (
	colorRed    = "31"
	colorGreen  = "32"
	colorYellow = "33"
	colorBlue   = "34"
	colorBold   = "1"
	colorDim    = "2"
)

// paint wraps text in an ANSI colour only when writing to a colour terminal.
func (s *streams) paint(code, text string) string {
	if !s.color {
		return text
	}
	return "\x1b[" + code + "m" + text + "\x1b[0m"
}
