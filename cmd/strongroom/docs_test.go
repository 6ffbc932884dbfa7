package main

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// docCommand is one 'strongroom ...' command line: its command path, as
// the command tree resolves it, and the names of the flags it gives.
type docCommand struct {
	where string // file:line
	path  string // e.g. "strongroom key generate"
	flags []string
	err   string // why it does not resolve, if it does not
}

func (c docCommand) key() string { return c.path + " " + strings.Join(c.flags, " ") }

// TestDocCommandsRunInScripts holds the docs to the code: every strongroom
// command in the README's and docs/'s shell blocks must name a real command
// and real flags, and a command with exactly that command path and those
// flags must run (and succeed) in one of the testdata scripts, which CI
// runs. A doc that shows a renamed flag, or a command no script runs, fails
// here.
func TestDocCommandsRunInScripts(t *testing.T) {
	cli := cobraCommand(root(), &env{getenv: os.Getenv})
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	var shown []docCommand
	for _, f := range append([]string{"../../README.md"}, docs...) {
		for _, l := range shellLines(t, f) {
			for _, words := range strongroomCommands(l.text) {
				shown = append(shown, resolve(cli, l.where, words))
			}
		}
	}
	if len(shown) < 20 {
		t.Fatalf("found only %d commands in the docs: is the extraction broken?", len(shown))
	}
	run := map[string]bool{}
	scripts, _ := filepath.Glob("testdata/*/*.txtar")
	for _, f := range scripts {
		for _, l := range scriptLines(t, f) {
			for _, words := range strongroomCommands(l.text) {
				if c := resolve(cli, l.where, words); c.err == "" {
					run[c.key()] = true
				}
			}
		}
	}
	for _, c := range shown {
		switch {
		case c.err != "":
			t.Errorf("%s: %s", c.where, c.err)
		case !run[c.key()]:
			t.Errorf("%s: no script in testdata runs %q with exactly the flags %q", c.where, c.path, c.flags)
		}
	}
}

type line struct{ where, text string }

// shellLines returns the lines of the sh/bash/console blocks of a Markdown
// file, with backslash continuations joined.
func shellLines(t *testing.T, path string) []line {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []line
	in, n, cont := false, 0, ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		s := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(s), "```") {
			lang := strings.TrimPrefix(strings.TrimSpace(s), "```")
			in = !in && slices.Contains([]string{"sh", "bash", "console", "shell"}, lang)
			continue
		}
		if !in {
			continue
		}
		if strings.HasSuffix(s, "\\") {
			cont += strings.TrimSuffix(s, "\\") + " "
			continue
		}
		out = append(out, line{where: filepath.Base(path) + ":" + strconv.Itoa(n), text: cont + s})
		cont = ""
	}
	return out
}

// scriptLines returns a script's commands that must succeed: 'exec' lines
// without '!' (a background '&name&' suffix is dropped).
func scriptLines(t *testing.T, path string) []line {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []line
	for i, s := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(s, "-- ") {
			break // the archive's files
		}
		if rest, ok := strings.CutPrefix(strings.TrimSpace(s), "exec "); ok {
			if j := strings.LastIndex(rest, " &"); j >= 0 && strings.HasSuffix(rest, "&") {
				rest = rest[:j]
			}
			out = append(out, line{where: filepath.Base(path) + ":" + strconv.Itoa(i+1), text: rest})
		}
	}
	return out
}

// strongroomCommands splits a shell line into words and returns each
// 'strongroom ...' command in it: at the start, after a pipe, ;, && or
// $( ), up to the next of those or a comment.
func strongroomCommands(s string) [][]string {
	var cmds [][]string
	var cur []string
	inCmd := false
	flush := func() {
		if inCmd && len(cur) > 0 {
			cmds = append(cmds, cur)
		}
		cur, inCmd = nil, false
	}
	atStart := true
	for _, w := range shellWords(s) {
		switch {
		case w == "#" || strings.HasPrefix(w, "#"):
			flush()
			return cmds
		case w == "|" || w == ";" || w == "&&" || w == "||" || w == ")" || w == "$(" || w == "<" || w == ">":
			flush()
			atStart = w != "<" && w != ">"
			continue
		}
		if !inCmd && atStart && (w == "strongroom" || strings.HasSuffix(w, "/strongroom")) {
			inCmd = true
			continue
		}
		if inCmd {
			cur = append(cur, w)
		}
		atStart = false
	}
	flush()
	return cmds
}

// shellWords splits s at spaces outside quotes, keeping $(, ), |, ;, <
// and > as words of their own.
func shellWords(s string) []string {
	var words []string
	var b strings.Builder
	quote := byte(0)
	word := func() {
		if b.Len() > 0 {
			words = append(words, b.String())
			b.Reset()
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ' ' || c == '\t':
			word()
		case c == '$' && i+1 < len(s) && s[i+1] == '(':
			word()
			words = append(words, "$(")
			i++
		case c == ')' || c == '|' || c == ';' || c == '<' || c == '>':
			word()
			words = append(words, string(c))
		default:
			b.WriteByte(c)
		}
	}
	word()
	return words
}

// resolve finds the command words name in the tree and the flags they give.
func resolve(cli *cobra.Command, where string, words []string) docCommand {
	cmd, rest, err := cli.Find(words)
	c := docCommand{where: where}
	if err != nil || cmd.HasSubCommands() {
		c.err = "no such command: strongroom " + strings.Join(words, " ")
		return c
	}
	c.path = cmd.CommandPath()
	for _, w := range rest {
		name, ok := strings.CutPrefix(w, "--")
		if !ok {
			if len(w) == 2 && w[0] == '-' {
				if f := cmd.Flags().ShorthandLookup(w[1:]); f != nil {
					name, ok = f.Name, true
				} else if f := cmd.InheritedFlags().ShorthandLookup(w[1:]); f != nil {
					name, ok = f.Name, true
				}
			}
			if !ok {
				continue
			}
		}
		name, _, _ = strings.Cut(name, "=")
		if cmd.Flags().Lookup(name) == nil && cmd.InheritedFlags().Lookup(name) == nil {
			c.err = c.path + " has no flag --" + name
			return c
		}
		if !slices.Contains(c.flags, name) {
			c.flags = append(c.flags, name)
		}
	}
	slices.Sort(c.flags)
	return c
}
