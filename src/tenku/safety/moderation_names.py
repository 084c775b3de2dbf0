"""Names that moderation refuses on their own: real public figures (no deepfakes of real people) and
copyrighted characters, as regular expressions over normalised text (see :mod:`tenku.safety.normalize`).

A surname that is also a common word ("trump", "bush", "swift", "musk") is listed only with the first
name or a title; a surname that is not ("merkel", "obama", "putin") is listed alone. The lists are
long but not complete: the optional classifier and endpoint layers exist for what they miss, and an
operator adds names with ``TENKU_MODERATION_DENY``.
"""

from __future__ import annotations

PUBLIC_FIGURES = [
    # politicians and heads of state
    r"donald (?:j )?trump|president trump|trump (?:administration|rally|tower|supporters?)|joe biden|biden|"
    r"barack obama|obama|michelle obama|kamala harris|hillary clinton|bill clinton|george w? ?bush|"
    r"president bush|john f kennedy|ronald reagan|richard nixon|abraham lincoln|vladimir putin|putin|"
    r"xi jinping|kim jong ?un|kim jong il|volodymyr zelensk\w*|zelensk\w*|selenskyj|emmanuel macron|macron|"
    r"angela merkel|merkel|olaf scholz|scholz|friedrich merz|merz|annalena baerbock|baerbock|robert habeck|"
    r"christian lindner|markus soeder|soeder|alice weidel|weidel|sahra wagenknecht|wagenknecht|frank walter "
    r"steinmeier|steinmeier|helmut kohl|gerhard schroeder|keir starmer|rishi sunak|boris johnson|theresa may|"
    r"liz truss|margaret thatcher|tony blair|winston churchill|narendra modi|modi|justin trudeau|trudeau|"
    r"giorgia meloni|pedro sanchez|viktor orban|orban|recep tayyip erdogan|erdogan|benjamin netanyahu|"
    r"netanyahu|mahmoud abbas|ali khamenei|khamenei|bashar al assad|assad|javier milei|milei|lula da silva|"
    r"jair bolsonaro|bolsonaro|ursula von der leyen|von der leyen|jd vance|j d vance|marine le pen|le pen|"
    r"nancy pelosi|bernie sanders|alexandria ocasio cortez|ron desantis|desantis|mike pence|"
    r"adolf hitler|hitler|joseph stalin|stalin|mao zedong|osama bin laden|bin laden|saddam hussein|"
    r"muammar gaddafi|gaddafi|fidel castro|nelson mandela|mahatma gandhi|dalai lama|"
    # royals and religious leaders
    r"king charles|prince charles|queen elizabeth|prince william|prince harry|meghan markle|kate middleton|"
    r"princess diana|lady di|pope francis|pope leo|pope benedict|papst franziskus|papst leo|papst benedikt|"
    r"koenig charles|koenigin elisabeth|"
    # business and tech
    r"elon musk|mark zuckerberg|zuckerberg|jeff bezos|bezos|bill gates|steve jobs|tim cook|sam altman|"
    r"sundar pichai|satya nadella|warren buffett|jensen huang|larry page|sergey brin|peter thiel|"
    r"george soros|soros|richard branson|jack ma|"
    # musicians, actors, media
    r"taylor swift|beyonce|rihanna|lady gaga|ariana grande|billie eilish|selena gomez|justin bieber|"
    r"kanye west|kanye|kim kardashian|kardashians?|kylie jenner|ed sheeran|harry styles|dua lipa|"
    r"shakira|michael jackson|elvis presley|elvis|britney spears|miley cyrus|katy perry|"
    r"snoop dogg|eminem|jay z|bad bunny|olivia rodrigo|sabrina carpenter|the weeknd|post malone|"
    r"tom cruise|tom hanks|scarlett johansson|emma watson|emma stone|leonardo di ?caprio|brad pitt|"
    r"angelina jolie|jennifer aniston|jennifer lawrence|johnny depp|keanu reeves|will smith|dwayne johnson|"
    r"morgan freeman|robert downey jr|zendaya|timothee chalamet|margot robbie|ryan gosling|"
    r"ryan reynolds|natalie portman|meryl streep|denzel washington|arnold schwarzenegger|schwarzenegger|"
    r"sylvester stallone|jackie chan|marilyn monroe|charlie chaplin|oprah winfrey|oprah|ellen degeneres|"
    r"jimmy fallon|joe rogan|mr ?beast|pewdiepie|andrew tate|greta thunberg|thunberg|"
    # sport
    r"cristiano ronaldo|ronaldo|lionel messi|messi|neymar|kylian mbappe|mbappe|erling haaland|haaland|"
    r"lebron james|michael jordan|kobe bryant|serena williams|roger federer|federer|rafael nadal|nadal|"
    r"novak djokovic|djokovic|usain bolt|tiger woods|muhammad ali|mike tyson|lewis hamilton|max verstappen|"
    r"michael schumacher|thomas mueller|manuel neuer|toni kroos|jamal musiala|"
    # German-speaking media
    r"dieter bohlen|helene fischer|heidi klum|thomas gottschalk|gottschalk|guenther jauch|jauch|"
    r"stefan raab|jan boehmermann|boehmermann|til schweiger|matthias schweighoefer|florian silbereisen|"
    r"udo lindenberg|herbert groenemeyer|rammstein|till lindemann|mark forster|sarah connor|"
    r"joko winterscheidt|klaas heufer umlauf|barbara schoeneberger|markus lanz|anne will|sandra maischberger|"
    r"carmen geiss|daniela katzenberger|sophia thomalla|lena meyer landrut|"
    r"deepfake of|deep fake of|deepfake"
]

CHARACTERS = [
    # Disney, Pixar, Marvel, Lucasfilm
    r"mickey mouse|minnie mouse|micky maus|minni maus|donald duck|daisy duck|goofy (?:from|and) (?:disney|mickey)|pluto the dog|"
    r"dagobert duck|scrooge mcduck|tick trick und track|huey dewey and louie|elsa (?:from|of|aus) frozen|"
    r"anna (?:from|of|aus) frozen|olaf (?:from|of|aus) frozen|anna und elsa|elsa and anna|frozen(?:'s)? elsa|"
    r"simba|mufasa|timon and pumbaa|timon und pumbaa|lion king|koenig der loewen|moana|vaiana|"
    r"rapunzel (?:from|of) tangled|ariel the little mermaid|arielle die meerjungfrau|cinderella (?:from|of) disney|"
    r"snow white and the seven dwarfs|schneewittchen und die sieben zwerge|lilo and stitch|lilo und stitch|"
    r"buzz lightyear|woody (?:from|and|of|aus) toy story|toy story|lightning mcqueen|nemo the clownfish|finding nemo|"
    r"findet nemo|wall ?e|ratatouille|remy the rat|the incredibles|die unglaublichen|"
    r"monsters inc|sulley|mike wazowski|baymax|bambi|dumbo|pinocchio|peter pan|tinker ?bell|"
    r"winnie the pooh|winnie puuh|pooh bear|tigger|eeyore|i aah|"
    r"spider[ -]?man|spiderman|iron ?man|captain america|incredible hulk|hulk smash|bruce banner|thor odinson|thor (?:from|of) marvel|"
    r"black widow|black panther|doctor strange|captain marvel|ant[ -]?man|deadpool|wolverine|thanos|"
    r"rocket raccoon|scarlet witch|x[ -]?men|avengers|the avengers|"
    r"darth vader|yoda|baby yoda|grogu|luke skywalker|han solo|princess leia|prinzessin leia|chewbacca|"
    r"obi[ -]?wan|kenobi|r2[ -]?d2|c[ -]?3po|star wars|mandalorian|kylo ren|boba fett|"
    # DC, Warner
    r"batman|superman|wonder woman|the joker|joker (?:from|of) batman|harley quinn|aquaman|the flash|robin "
    r"(?:from|and) batman|catwoman|lex luthor|green lantern|bugs bunny|daffy duck|tweety|looney tunes|"
    r"road runner|wile e coyote|tom and jerry|tom und jerry|scooby[ -]?doo|harry potter|hermione granger|"
    r"hermine granger|ron weasley|dumbledore|voldemort|hagrid|hogwarts|severus snape|"
    r"gandalf|frodo|bilbo baggins|gollum|aragorn|legolas|sauron|"
    # Nintendo, games
    r"super mario|mario bros\w*|mario and luigi|mario und luigi|luigi (?:from|and) mario|princess peach|prinzessin peach|bowser|"
    r"yoshi|donkey kong|link (?:from|of) zelda|princess zelda|zelda|kirby|pikachu|pokemon\w*|pokémon|"
    r"charizard|glumanda|bisasam|bulbasaur|squirtle|schiggy|eevee|evoli|mewtwo|ash ketchum|"
    r"sonic the hedgehog|sonic (?:and|und) tails|tails the fox|knuckles the echidna|lara croft|master chief|kratos|"
    r"pac[ -]?man|steve from minecraft|creeper from minecraft|minecraft steve|fortnite|"
    r"solid snake|geralt of rivia|geralt von riva|"
    # TV, anime, comics
    r"homer simpson|bart simpson|marge simpson|lisa simpson|the simpsons|die simpsons|simpsons|"
    r"family guy|peter griffin|stewie griffin|rick and morty|rick sanchez|south park|cartman|"
    r"spongebob\w*|sponge bob|patrick star|squidward|thaddaeus|shrek|donkey from shrek|fiona from shrek|"
    r"puss in boots|gestiefelte kater|garfield|snoopy|charlie brown|the peanuts|peanuts gang|"
    r"hello kitty|peppa pig|peppa wutz|george pig|paw patrol|chase from paw patrol|bluey|teletubbies|"
    r"bob the builder|bob der baumeister|thomas the tank engine|thomas die lokomotive|the smurfs|schlumpf\w*|"
    r"smurfs?|minions (?:from|of) despicable me|despicable me|gru from despicable me|kung fu panda|po the panda|totoro|naruto|sasuke|goku|"
    r"dragon ball|vegeta|sailor moon|one piece|luffy|astro boy|doraemon|hello kitty|my little pony|"
    r"barbie doll|ken doll|optimus prime|bumblebee (?:from|the) transformers|he-man|"
    r"teenage mutant ninja turtles|ninja turtles|power rangers|james bond|007|indiana jones|"
    r"sherlock (?:from|of) bbc|doctor who|daleks?|wednesday addams|stranger things|eleven from stranger things|"
    r"squid game|walter white|jon snow|daenerys|game of thrones|"
    # German and European
    r"biene maja|willi (?:the bee|die biene)|maya the bee|asterix|obelix|idefix|miraculix|tim und struppi|"
    r"tintin|snowy (?:from|and) tintin|pumuckl|benjamin bluemchen|bibi blocksberg|bibi und tina|"
    r"sendung mit der maus|der kleine maulwurf|the little mole|sandmaennchen|"
    r"lucky luke|die schluempfe|pippi langstrumpf|pippi longstocking|michel aus loenneberga|"
    r"the gruffalo|der grueffelo|grueffelo|paddington|peter rabbit|moomins?|mumins?|heidi (?:from|aus) "
    r"(?:the alps|den bergen)|wickie|wicky|nils holgersson|alfred j kwak|pettersson und findus|"
    r"der kleine drache kokosnuss|feuerwehrmann sam|fireman sam|shaun das schaf|shaun the sheep|"
    r"wallace and gromit|wallace und gromit|mr bean"
]
