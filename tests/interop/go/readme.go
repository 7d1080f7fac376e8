// The README's Go snippet ("For programs"), as a program: tests/tests/e2e/interop.rs generates the
// stubs from proto/ (protoc-gen-go, protoc-gen-go-grpc) into the package authctl.dev/agent/v1,
// builds this file against them, runs it against a logged-in agent, and checks that README.md
// holds the text between the markers.
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "authctl.dev/agent/v1"
)

func main() {
	// README: begin
	socket := os.Getenv("AUTHCTL_SOCK") // else the socket the CLI uses
	if socket == "" {
		socket = os.Getenv("XDG_RUNTIME_DIR") + "/authctl/agent.sock"
	}
	// No channel option needed; with grpc-go ≥ 1.63, grpc.NewClient("unix:"+socket,
	// grpc.WithTransportCredentials(insecure.NewCredentials())) is the same.
	conn, err := grpc.Dial("unix:"+socket, grpc.WithInsecure())
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	agent := agentv1.NewAgentClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, err := agent.GetToken(ctx, &agentv1.GetTokenRequest{Account: "corp", MinTtlSeconds: 60})
	switch status.Code(err) {
	case codes.OK:
	case codes.FailedPrecondition: // the message names `authctl login corp`
		fmt.Fprintln(os.Stderr, status.Convert(err).Message())
		os.Exit(4)
	default: // codes.Unavailable: not running; codes.NotFound: no such account; …
		panic(err)
	}
	fmt.Println("expires at", token.ExpiresAt)
	req, _ := http.NewRequest("GET", os.Getenv("API_URL"), nil)
	req.Header.Set("Authorization", "Bearer "+token.AccessToken)
	resp, err := http.DefaultClient.Do(req)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("the API answered %s", resp.Status)
	}
	if err != nil {
		panic(err)
	}
	// README: end
}
