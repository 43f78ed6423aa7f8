// Plinth language grammar (v1). The specification is docs/language.md.
//
// The grammar is deliberately target-independent: no actions, no predicates.
// Two things are finished in C++ by compiler/syntax:
//   * heredoc bodies (HEREDOC_START is followed by lines up to the terminator),
//   * string templates: STRING/HEREDOC text is split into literal parts and
//     `${ expr }` parts, and each part is parsed with the `standaloneExpr` rule.
// Newlines are insignificant: every body item starts with an identifier and no
// expression can continue with a bare identifier, so no separator is needed.
grammar Plinth;

// Never produced by the generated lexer; the heredoc reader in C++ emits them.
tokens { HEREDOC, UNTERMINATED_HEREDOC }

// ---------------------------------------------------------------- parser

file           : item* EOF ;
standaloneExpr : expr EOF ;

item      : attribute | block ;
attribute : IDENT '=' expr ;
block     : IDENT label* '{' item* '}' ;
label     : STRING | IDENT ;

// Alternatives are listed from the highest to the lowest precedence.
expr
  : primary                                             # primaryExpr
  | expr '.' IDENT                                      # getAttrExpr
  | expr '[' '*' ']'                                    # splatExpr
  | expr '[' expr ']'                                   # indexExpr
  | op=('!' | '-') expr                                 # unaryExpr
  | expr op=('*' | '/' | '%') expr                      # binaryExpr
  | expr op=('+' | '-') expr                            # binaryExpr
  | expr op=('<' | '<=' | '>' | '>=') expr              # binaryExpr
  | expr op=('==' | '!=') expr                          # binaryExpr
  | expr op='&&' expr                                   # binaryExpr
  | expr op='||' expr                                   # binaryExpr
  | <assoc=right> expr '?' expr ':' expr                # conditionalExpr
  ;

primary
  : NUMBER                                              # numberLit
  | UNIT_NUMBER                                         # unitLit
  | STRING                                              # stringLit
  | HEREDOC                                             # heredocLit
  | KW_TRUE                                             # trueLit
  | KW_FALSE                                            # falseLit
  | KW_NULL                                             # nullLit
  | IDENT '(' (expr (',' expr)* ','?)? ')'              # callExpr
  | IDENT                                               # nameExpr
  | '(' expr ')'                                        # parenExpr
  | '[' KW_FOR IDENT (',' IDENT)? KW_IN expr ':' expr (KW_IF expr)? ']'        # forListExpr
  | '{' KW_FOR IDENT (',' IDENT)? KW_IN expr ':' expr '=>' expr (KW_IF expr)? '}'# forObjectExpr
  | '[' (expr (',' expr)* ','?)? ']'                    # listExpr
  | '{' (objectItem (','? objectItem)* ','?)? '}'       # objectExpr
  ;

objectItem : key=(IDENT | STRING) '=' expr ;

// ----------------------------------------------------------------- lexer

KW_TRUE  : 'true' ;
KW_FALSE : 'false' ;
KW_NULL  : 'null' ;
KW_FOR   : 'for' ;
KW_IN    : 'in' ;
KW_IF    : 'if' ;

IDENT : [A-Za-z_] [A-Za-z0-9_]* ;

// 1e3 is a NUMBER (longest match), 30s / 10GiB / 80% are UNIT_NUMBERs. The
// suffix is checked against the unit table in C++ so a typo gets a precise error.
NUMBER      : DIGITS ('.' DIGITS)? EXPONENT? ;
UNIT_NUMBER : DIGITS ('.' DIGITS)? ([A-Za-z]+ | '%') ;
fragment DIGITS   : [0-9]+ ;
fragment EXPONENT : [eE] [+-]? DIGITS ;

STRING              : '"' STRING_PART* '"' ;
UNTERMINATED_STRING : '"' (ESCAPE | ~["\\\r\n])* ;
fragment STRING_PART
  : ESCAPE
  | '${' INTERP_BODY '}'
  | ~["\\\r\n]
  ;
fragment ESCAPE      : '\\' . ;
fragment INTERP_BODY : ( ~[{}"] | '{' INTERP_BODY '}' | STRING )* ;

HEREDOC_START : '<<' '-'? [A-Za-z_] [A-Za-z0-9_]* [ \t]* '\r'? '\n' ;

LBRACE : '{' ;
RBRACE : '}' ;
LBRACK : '[' ;
RBRACK : ']' ;
LPAREN : '(' ;
RPAREN : ')' ;
ASSIGN : '=' ;
ARROW  : '=>' ;
COMMA  : ',' ;
DOT    : '.' ;
COLON  : ':' ;
QUESTION : '?' ;
NOT    : '!' ;
PLUS   : '+' ;
MINUS  : '-' ;
STAR   : '*' ;
SLASH  : '/' ;
PERCENT: '%' ;
EQ     : '==' ;
NE     : '!=' ;
LT     : '<' ;
LE     : '<=' ;
GT     : '>' ;
GE     : '>=' ;
AND    : '&&' ;
OR     : '||' ;

LINE_COMMENT         : ('#' | '//') ~[\r\n]* -> channel(HIDDEN) ;
BLOCK_COMMENT        : '/*' .*? '*/' -> channel(HIDDEN) ;
UNTERMINATED_COMMENT : '/*' ( ~'*' | '*'+ ~[*/] )* '*'* ;
NEWLINE              : '\r'? '\n' -> channel(HIDDEN) ;
WS                   : [ \t\f]+ -> channel(HIDDEN) ;
BAD_CHAR             : . ;
